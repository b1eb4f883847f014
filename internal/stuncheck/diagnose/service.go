package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/stund/stund/pkg/check"
)

// Cluster is what the diagnosis knows about one Service.
type Cluster struct {
	Service *corev1.Service
	Slices  []discoveryv1.EndpointSlice
	Nodes   []corev1.Node
	// NodesErr says why the Nodes could not be read (usually RBAC: they
	// are cluster-scoped); findings that need them are then skipped.
	NodesErr error
	// HealthChecks are the nodes' answers to kube-proxy's health check of
	// the Service (CheckHealth); nil when none was sent. Diagnose reports
	// them as the health-check finding.
	HealthChecks []check.HealthCheck
}

// ParseServiceRef parses svc/NAME or service/NAME (kubectl's spelling).
// ok is false when s is not such a reference.
func ParseServiceRef(s string) (name string, ok bool) {
	kind, name, found := strings.Cut(s, "/")
	if !found {
		return "", false
	}
	switch strings.ToLower(kind) {
	case "svc", "service", "services":
		return name, true
	}

	return "", false
}

// ReadService reads the Service namespace/name, its EndpointSlices and
// the Nodes. A missing Service (ErrServiceNotFound) or one it may not
// read is an error; Nodes it may not read are noted in Cluster.NodesErr.
func ReadService(ctx context.Context, cs kubernetes.Interface, namespace, name string) (*Cluster, error) {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q in namespace %q", ErrServiceNotFound, name, namespace)
		}

		return nil, fmt.Errorf("get service %s/%s: %w", namespace, name, err)
	}
	cl := &Cluster{Service: svc}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}).String()
	eps, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list EndpointSlices of service %s/%s: %w", namespace, name, err)
	}
	for _, s := range eps.Items { // also when a server ignores the selector
		if s.Labels[discoveryv1.LabelServiceName] == name {
			cl.Slices = append(cl.Slices, s)
		}
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		cl.NodesErr = err
	} else {
		cl.Nodes = nodes.Items
	}

	return cl, nil
}

// Targets returns what to probe for svc: every load-balancer ingress
// address (IP, or host name when the provider gives one) × every UDP and
// TCP port, one Target per address and port with the port's protocols.
// input names the Service in reports, e.g. "svc/stund".
func Targets(svc *corev1.Service, input string) []check.Target {
	type key struct {
		host string
		port uint16
	}
	var (
		order []key
		trs   = map[key][]check.Transport{}
	)
	for _, in := range svc.Status.LoadBalancer.Ingress {
		host := in.IP
		if ip, err := netip.ParseAddr(host); err == nil {
			host = ip.Unmap().String()
		} else {
			host = in.Hostname
		}
		if host == "" {
			continue
		}
		for _, p := range svc.Spec.Ports {
			var tr check.Transport
			switch p.Protocol {
			case corev1.ProtocolUDP:
				tr = check.UDP
			case corev1.ProtocolTCP, "":
				tr = check.TCP
			default:
				continue // SCTP
			}
			k := key{host, uint16(p.Port)}
			if _, ok := trs[k]; !ok {
				order = append(order, k)
			}
			if !slices.Contains(trs[k], tr) {
				trs[k] = append(trs[k], tr)
			}
		}
	}
	out := make([]check.Target, 0, len(order))
	for _, k := range order {
		ts := trs[k]
		slices.Sort(ts) // tcp before udp, as --transport lists them in any order
		out = append(out, check.Target{Input: input, Host: k.host, Port: k.port, Transports: ts})
	}

	return out
}

// ErrServiceNotFound is wrapped by ReadService's error when the Service
// does not exist.
var ErrServiceNotFound = errors.New("service not found")
