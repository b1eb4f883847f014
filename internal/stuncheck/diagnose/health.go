package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/pkg/check"
)

const (
	// DefaultHealthTimeout bounds each node's health check: connecting,
	// the answer and its body.
	DefaultHealthTimeout = time.Second
	// maxHealthBody is how much of an answer is read; kube-proxy's is
	// about 150 bytes.
	maxHealthBody = 4 << 10
	// maxHealthInFlight caps the checks sent at once in a large cluster.
	maxHealthInFlight = 64
	// endpointWeightHeader carries kube-proxy's local endpoint count too.
	endpointWeightHeader = "X-Load-Balancing-Endpoint-Weight"
)

// A HealthOption changes how CheckHealth sends its checks.
type HealthOption func(*healthConfig)

type healthConfig struct {
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	client  *http.Client
}

// WithHealthTimeout bounds each node's check (default
// DefaultHealthTimeout); zero or less keeps the default.
func WithHealthTimeout(d time.Duration) HealthOption {
	return func(c *healthConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithHealthDial connects to a node's health-check address with dial
// instead of the network; tests point it at their own servers.
func WithHealthDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) HealthOption {
	return func(c *healthConfig) { c.dial = dial }
}

// WithHealthClient sends the checks with client instead of one built
// from the timeout and dial options; its own Timeout applies then, the
// health timeout still bounds each check.
func WithHealthClient(client *http.Client) HealthOption {
	return func(c *healthConfig) { c.client = client }
}

// HealthCheckPort returns the port kube-proxy serves svc's health check
// on: spec.healthCheckNodePort of a LoadBalancer Service with
// externalTrafficPolicy Local, else 0.
func HealthCheckPort(svc *corev1.Service) uint16 {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !cluster.IsLocal(svc) {
		return 0
	}
	p := svc.Spec.HealthCheckNodePort
	if p <= 0 || p > 65535 {
		return 0
	}

	return uint16(p)
}

// HealthAddress returns where the health check of node n is sent: its
// first InternalIP, else its first ExternalIP, at port. It is invalid
// when the node has neither.
func HealthAddress(n *corev1.Node, port uint16) netip.AddrPort {
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != typ {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				return netip.AddrPortFrom(ip.Unmap().WithZone(""), port)
			}
		}
	}

	return netip.AddrPort{}
}

// CheckHealth sends kube-proxy's health check of cl's Service, an HTTP
// GET on its healthCheckNodePort, to every node in cl, concurrently, and
// returns each node's answer in the order of cl.Nodes, with input (the
// Service as the user wrote it) as their Target. A node that does not
// answer is recorded with the reason: node addresses are often private,
// so that is no failure. It sends nothing and returns nil when the
// Service has no health check port (HealthCheckPort) or there are no
// Nodes.
func CheckHealth(ctx context.Context, cl *Cluster, input string, opts ...HealthOption) []check.HealthCheck {
	port := HealthCheckPort(cl.Service)
	if port == 0 || len(cl.Nodes) == 0 {
		return nil
	}
	cfg := healthConfig{timeout: DefaultHealthTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	client := cfg.client
	if client == nil {
		dial := cfg.dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: cfg.timeout}).DialContext
		}
		client = &http.Client{
			Transport: &http.Transport{
				// What a load balancer does: straight to the node, no
				// HTTP proxy from the environment, one request per
				// connection.
				Proxy:                 nil,
				DialContext:           dial,
				DisableKeepAlives:     true,
				ResponseHeaderTimeout: cfg.timeout,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	out := make([]check.HealthCheck, len(cl.Nodes))
	sem := make(chan struct{}, maxHealthInFlight)
	var wg sync.WaitGroup
	for i := range cl.Nodes {
		n := &cl.Nodes[i]
		out[i] = check.HealthCheck{Target: input, Node: n.Name, Address: HealthAddress(n, port)}
		if !out[i].Address.IsValid() {
			out[i].Error = "no InternalIP or ExternalIP"

			continue
		}
		wg.Add(1)
		go func(h *check.HealthCheck) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				h.Error = unreachable(ctx.Err())

				return
			}
			healthCheck(ctx, client, cfg.timeout, h)
		}(&out[i])
	}
	wg.Wait()

	return out
}

// kubeProxyAnswer is the body of kube-proxy's health check.
type kubeProxyAnswer struct {
	Service *struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      *int  `json:"localEndpoints"`
	ServiceProxyHealthy *bool `json:"serviceProxyHealthy"`
}

// healthCheck sends one check and records the answer in h.
func healthCheck(ctx context.Context, client *http.Client, timeout time.Duration, h *check.HealthCheck) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Address.String()+"/", nil)
	if err != nil {
		h.Error = err.Error()

		return
	}
	req.Header.Set("User-Agent", "stuncheck")
	resp, err := client.Do(req)
	if err != nil {
		h.Error = unreachable(err)

		return
	}
	defer resp.Body.Close()
	h.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		h.Error = "body unread: " + reason(err)

		return
	}
	var a kubeProxyAnswer
	if err := json.Unmarshal(body, &a); err != nil || (a.Service == nil && a.LocalEndpoints == nil) {
		h.Error = "body is not kube-proxy's JSON"
		if n, err := strconv.Atoi(resp.Header.Get(endpointWeightHeader)); err == nil && n >= 0 {
			h.LocalEndpoints = &n
		}

		return
	}
	h.LocalEndpoints, h.ServiceProxyHealthy = a.LocalEndpoints, a.ServiceProxyHealthy
	if h.LocalEndpoints != nil && *h.LocalEndpoints < 0 {
		h.LocalEndpoints = nil
	}
}

// unreachable words an error that left a check without an answer:
// "unreachable: i/o timeout", "unreachable: connection refused" when no
// connection was made or no answer came in time; "no answer: EOF" when
// the connection was closed or the answer was not HTTP.
func unreachable(err error) string {
	var op *net.OpError
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout()) || (errors.As(err, &op) && op.Op == "dial") {
		return "unreachable: " + reason(err)
	}

	return "no answer: " + reason(err)
}

// reason is the last words of a network error: what a user can act on,
// without the URL and the operation around it.
func reason(err error) string {
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "i/o timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &errno):
		return errno.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// healthAnswers sorts the checks of a diagnosis by what they answered.
type healthAnswers struct {
	port       uint16
	ok         []check.HealthCheck // 200
	down       []check.HealthCheck // 503
	other      []check.HealthCheck // another status: not kube-proxy
	unanswered []check.HealthCheck
}

func sortHealth(hcs []check.HealthCheck) healthAnswers {
	var a healthAnswers
	for _, h := range hcs {
		if a.port == 0 && h.Address.IsValid() {
			a.port = h.Address.Port()
		}
		switch {
		case !h.Answered():
			a.unanswered = append(a.unanswered, h)
		case h.Status == http.StatusOK:
			a.ok = append(a.ok, h)
		case h.Status == http.StatusServiceUnavailable:
			a.down = append(a.down, h)
		default:
			a.other = append(a.other, h)
		}
	}

	return a
}

func nodeNames(hcs []check.HealthCheck) []string {
	out := make([]string, len(hcs))
	for i, h := range hcs {
		out[i] = h.Node
	}

	return out
}

// listNames names at most maxNamesInMessage nodes: "a, b and 3 more".
func listNames(names []string) string {
	if len(names) <= maxNamesInMessage {
		return joinAnd(names)
	}

	return fmt.Sprintf("%s and %d more", joinComma(names[:maxNamesInMessage]), len(names)-maxNamesInMessage)
}

func joinComma(s []string) string { return strings.Join(s, ", ") }

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}

	return joinComma(s[:len(s)-1]) + " and " + s[len(s)-1]
}

// maxHealthInMessage is how many nodes' answers a message lists; the
// report's health checks list them all.
const maxHealthInMessage = 10

// healthPort is the port the checks went to.
func (d *diagnosis) healthPort() uint16 {
	if p := HealthCheckPort(d.svc); p != 0 {
		return p
	}

	return sortHealth(d.cl.HealthChecks).port
}

// droppedAt links unanswered probes to the nodes whose health check
// says 503, for endpoints-not-on-all-nodes; "" when there is no such
// link.
func (d *diagnosis) droppedAt() string {
	if !d.unanswered || len(d.cl.HealthChecks) == 0 {
		return ""
	}
	down := sortHealth(d.cl.HealthChecks).down
	if len(down) == 0 {
		return ""
	}

	return fmt.Sprintf(" The probes got no answer: most likely the load balancer, or a route pinned to one node, delivered them to "+
		"a node whose health check on port %d says 503 (%s), which dropped them.", d.healthPort(), listNames(nodeNames(down)))
}

// healthChecks reports what kube-proxy's health check said on each node
// (Cluster.HealthChecks, from CheckHealth) and whether that agrees with
// the EndpointSlices: a load balancer that honours the check sends only
// to the nodes answering 200.
func (d *diagnosis) healthChecks() {
	hcs := d.cl.HealthChecks
	if len(hcs) == 0 {
		return
	}
	port := d.healthPort()
	a := sortHealth(hcs)
	ready := map[string]bool{}
	for _, n := range cluster.ReadyEndpointNodes(ptrs(d.cl.Slices)) {
		ready[n] = true
	}

	var answers []string
	for i, h := range hcs {
		if i == maxHealthInMessage {
			answers = append(answers, fmt.Sprintf("and %d more", len(hcs)-maxHealthInMessage))

			break
		}
		sum := h.Summary()
		if what, why, ok := strings.Cut(sum, ": "); ok && !h.Answered() {
			sum = what + " (" + why + ")" // "unreachable (i/o timeout)"
		}
		answers = append(answers, h.Node+" "+sum)
	}
	msg := fmt.Sprintf("kube-proxy's health check of Service %s on port %d: %s", d.ref, port, strings.Join(answers, ", "))

	// What a load balancer that honours the check does with it.
	answered := len(a.ok) + len(a.down) + len(a.other)
	switch {
	case answered == 0:
		msg += ". No node answered: node addresses are often reachable only from the cluster's network, " +
			"where the load balancer checks them from, so that is no fault."
	case len(a.ok) == 0:
		msg += "; a load balancer that honours it sends to none of the nodes that answered."
	case len(a.down)+len(a.other) == 0 && len(a.unanswered) == 0:
		msg += "; a load balancer that honours it sends to every node."
	case len(a.unanswered) > 0:
		msg += fmt.Sprintf("; of the nodes that answered, a load balancer that honours it sends only to %s.", listNames(nodeNames(a.ok)))
	default:
		msg += fmt.Sprintf("; a load balancer that honours it sends only to %s.", listNames(nodeNames(a.ok)))
	}

	// Whether it agrees with the EndpointSlices.
	var downReady, okIdle, unhealthy []string
	for _, h := range a.down {
		if ready[h.Node] {
			downReady = append(downReady, h.Node)
		}
		if h.ServiceProxyHealthy != nil && !*h.ServiceProxyHealthy {
			unhealthy = append(unhealthy, h.Node)
		}
	}
	for _, h := range a.ok {
		if !ready[h.Node] {
			okIdle = append(okIdle, h.Node)
		}
	}
	readyUnanswered := false
	for _, h := range append(slices.Clone(a.unanswered), a.other...) {
		readyUnanswered = readyUnanswered || ready[h.Node]
	}
	var fixes []string
	sev := check.SeverityInfo
	if answered > 0 && len(downReady)+len(okIdle)+len(a.other) == 0 {
		msg += " This agrees with the EndpointSlices."
	}
	if len(downReady) > 0 {
		sev = check.SeverityWarning
		msg += fmt.Sprintf(" It contradicts the EndpointSlices: %s %s a ready stund endpoint but %s 503, so a load balancer "+
			"that honours the check sends nothing there.", listNames(downReady), verb(len(downReady), "runs", "run"), verb(len(downReady), "answers", "answer"))
		if len(unhealthy) > 0 {
			msg += fmt.Sprintf(" kube-proxy on %s reports itself unhealthy (serviceProxyHealthy: false), and then answers 503 for every Service.",
				listNames(unhealthy))
		}
		if len(a.ok) == 0 && !readyUnanswered {
			sev = check.SeverityError
			msg += " No node says 200 although stund pods are ready: the Service takes no traffic through such a load balancer."
		}
		fixes = append(fixes, fmt.Sprintf("Check kube-proxy on %s (kubectl -n kube-system get pods -o wide -l k8s-app=kube-proxy, and its logs): "+
			"it answers 503 until it has programmed the Service's endpoints, and for every Service while it is unhealthy; "+
			"where a CNI replaces kube-proxy (Cilium), check its agent there. Answers that change between runs mean the endpoints were moving (a rollout).",
			listNames(downReady)))
	}
	if len(okIdle) > 0 {
		sev = maxSeverity(sev, check.SeverityWarning)
		msg += fmt.Sprintf(" It contradicts the EndpointSlices: %s %s 200 but %s no ready stund endpoint, so traffic a load balancer sends there is dropped.",
			listNames(okIdle), verb(len(okIdle), "answers", "answer"), verb(len(okIdle), "runs", "run"))
		fixes = append(fixes, fmt.Sprintf("kube-proxy on %s has not caught up with the EndpointSlices (a pod that just went away, or a kube-proxy "+
			"that stopped syncing): check its logs and restart it if it stays behind.", listNames(okIdle)))
	}
	if len(a.other) > 0 {
		sev = maxSeverity(sev, check.SeverityWarning)
		msg += fmt.Sprintf(" %s %s neither 200 nor 503: something other than kube-proxy serves port %d there.",
			listNames(nodeNames(a.other)), verb(len(a.other), "answers", "answer"), port)
		fixes = append(fixes, fmt.Sprintf("Find what listens on port %d of %s (ss -ltnp 'sport = :%d' on the node): "+
			"a load balancer reads its answer as the node's health.", port, listNames(nodeNames(a.other)), port))
	}
	if d.unanswered && len(a.down) > 0 && !d.notOnAll {
		msg += fmt.Sprintf(" The probes got no answer: most likely the load balancer, or a route pinned to one node, delivered them to "+
			"a node whose health check says 503 (%s), which dropped them.", listNames(nodeNames(a.down)))
	}
	switch {
	case len(fixes) > 0:
	case answered == 0:
		fixes = append(fixes, fmt.Sprintf("To read the health checks, run stuncheck where the nodes' addresses are reachable on port %d "+
			"(inside the cluster's network); curl http://<node address>:%d/ there shows the same answer.", port, port))
	case len(a.down) > 0 && d.notOnAll:
		fixes = append(fixes, "Nothing to change in the cluster; for the load balancer's side see endpoints-not-on-all-nodes.")
	case len(a.down) > 0:
		fixes = append(fixes, fmt.Sprintf("Nothing to change in the cluster: make sure the load balancer health-checks port %d "+
			"(cloud controllers set this up; a custom health-check annotation can replace it) and that no route sends traffic "+
			"to one node by hand; or run stund on every node (Helm chart: kind=DaemonSet).", port))
	default:
		fixes = append(fixes, "Nothing to change: every node that answered has a ready stund endpoint.")
	}
	d.add(IDHealthCheck, sev, strings.Join(fixes, " "), "%s", msg)
}

// verb picks the singular or plural form for n subjects.
func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}

	return many
}

// maxSeverity is the more severe of a and b.
func maxSeverity(a, b check.Severity) check.Severity {
	rank := map[check.Severity]int{check.SeverityError: 0, check.SeverityWarning: 1, check.SeverityInfo: 2}
	if rank[b] < rank[a] {
		return b
	}

	return a
}
