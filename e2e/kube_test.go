//go:build e2e

package e2e

import (
	"encoding/json"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stund/stund/internal/kubetest"
)

// kubeNamespace is the namespace the stand-in API server describes.
const kubeNamespace = "lab"

// labCluster describes the lab as Kubernetes would: the node with its
// addresses and pod CIDRs, the Service "stund" whose load-balancer ingress
// is the VIP (externalTrafficPolicy etp), and its EndpointSlice with the
// pod on the node.
func labCluster(etp corev1.ServiceExternalTrafficPolicy) []runtime.Object {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "stund", Namespace: kubeNamespace},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: etp,
			Ports: []corev1.ServicePort{
				{Name: "stun-udp", Protocol: corev1.ProtocolUDP, Port: stunPort, NodePort: nodePort},
				{Name: "stun-tcp", Protocol: corev1.ProtocolTCP, Port: stunPort, NodePort: nodePort},
			},
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: ipv4.VIP}, {IP: ipv6.VIP},
		}}},
	}
	if etp == corev1.ServiceExternalTrafficPolicyLocal {
		svc.Spec.HealthCheckNodePort = 32000
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node"},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24", "fd00:244::/64"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ipv4.Node},
			{Type: corev1.NodeInternalIP, Address: ipv6.Node},
			{Type: corev1.NodeHostName, Address: "node"},
		}},
	}
	n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	var eps []runtime.Object
	for _, f := range families {
		at := discoveryv1.AddressTypeIPv4
		if f.Name == "ipv6" {
			at = discoveryv1.AddressTypeIPv6
		}
		eps = append(eps, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "stund-" + f.Short, Namespace: kubeNamespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: "stund"}},
			AddressType: at,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{f.Pod}, NodeName: ptr.To("node"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports: []discoveryv1.EndpointPort{
				{Name: ptr.To("stun-udp"), Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(int32(stunPort))},
				{Name: ptr.To("stun-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(stunPort))},
			},
		})
	}

	return append([]runtime.Object{svc, n}, eps...)
}

// startAPI serves the stand-in API server on loopback inside each of
// hosts' namespaces (the pod's stund and the client's stuncheck both reach
// "their" API server, as a pod reaches the in-cluster API and a laptop its
// kubeconfig's) and returns a kubeconfig per host.
func startAPI(t *testing.T, objs []runtime.Object, hosts ...*Host) map[*Host]string {
	t.Helper()
	api := kubetest.New(objs...)
	t.Cleanup(api.Close)
	kubeconfigs := map[*Host]string{}
	for _, h := range hosts {
		var l net.Listener
		if err := h.inNamespace(func() error {
			var err error
			l, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		}); err != nil {
			t.Fatalf("%s: listen for the API server: %v", h.Role, err)
		}
		api.Serve(l)
		path := filepath.Join(t.TempDir(), h.Role+".kubeconfig")
		url := "http://" + l.Addr().String()
		if err := kubetest.WriteKubeconfig(path, url, "default"); err != nil {
			t.Fatal(err)
		}
		kubeconfigs[h] = path
	}
	return kubeconfigs
}

// kubeReport is the part of stuncheck's JSON the Kubernetes scenario reads.
type kubeReport struct {
	Verdict  string `json:"verdict"`
	Findings *[]struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Fix      string `json:"fix"`
	} `json:"findings"`
	Probes       []Probe `json:"probes"`
	HealthChecks []struct {
		Node   string `json:"node"`
		Status *int   `json:"status"`
	} `json:"health_checks"`
}

// TestKubernetes is issue 6's scenario: stund in the pod watches a
// stand-in API server describing the lab, and stuncheck on the client
// reads the Service from it. Behind kube-proxy's masquerade the findings
// name etp-cluster and snat-node-ip and stund counts source_class="node";
// with a passthrough path there is no etp-cluster and the class is client.
func TestKubernetes(t *testing.T) {
	for _, sc := range []struct {
		name     string
		mode     LBMode
		etp      corev1.ServiceExternalTrafficPolicy
		exit     int
		verdict  string
		class    string
		want     []string
		wantNone []string
	}{
		{"masquerade", KubeProxyCluster, corev1.ServiceExternalTrafficPolicyCluster, 1, "rewritten", "node",
			[]string{"etp-cluster", "snat-node-ip"}, nil},
		{"passthrough", Passthrough, corev1.ServiceExternalTrafficPolicyLocal, 0, "preserved", "client",
			nil, []string{"etp-cluster", "snat-node-ip", "snat-node-gateway", "snat-pod-cidr", "snat-lb-address", "no-ready-endpoints", "endpoints-not-on-all-nodes"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			kc := startAPI(t, labCluster(sc.etp), top.Pod, top.Client)
			stund := top.StartStundWith(t, "--kubeconfig", kc[top.Pod], "--namespace", kubeNamespace, "--service", "stund")
			stund.waitSynced(t)
			before := stund.BindingRequests(t)

			run := top.Stuncheck(t, append(expectIPs(), "-o", "json", "--timeout", "3s",
				"--kubeconfig", kc[top.Client], "-n", kubeNamespace, "svc/stund")...)
			if run.Exit != sc.exit {
				t.Errorf("exit %d, want %d\n%s", run.Exit, sc.exit, run.Stderr)
			}
			var rep kubeReport
			if err := json.Unmarshal([]byte(run.Stdout), &rep); err != nil {
				t.Fatalf("stuncheck JSON: %v", err)
			}
			if rep.Verdict != sc.verdict {
				t.Errorf("verdict %q, want %q", rep.Verdict, sc.verdict)
			}
			if rep.Findings == nil {
				t.Fatal("no findings in the report")
			}
			var ids []string
			for _, f := range *rep.Findings {
				ids = append(ids, f.ID)
				if f.Message == "" || f.Fix == "" || f.Severity == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			for _, id := range sc.want {
				if !slices.Contains(ids, id) {
					t.Errorf("findings %q lack %s", ids, id)
				}
			}
			for _, id := range sc.wantNone {
				if slices.Contains(ids, id) {
					t.Errorf("findings %q include %s", ids, id)
				}
			}
			// Every ingress address × port × protocol was probed.
			if len(rep.Probes) != 4 {
				t.Errorf("%d probes, want 4 (2 ingress addresses × udp, tcp)", len(rep.Probes))
			}
			for _, f := range families {
				for _, tr := range transports {
					i := slices.IndexFunc(rep.Probes, func(p Probe) bool { return p.Family == f.Name && p.Transport == tr })
					if i < 0 || rep.Probes[i].Target != "svc/stund" || rep.Probes[i].Verdict != sc.verdict {
						t.Errorf("%s %s probe: %+v", tr, f.Name, rep.Probes)
					}
				}
			}

			// The text a user reads: the findings under the verdict, each
			// with its fix.
			text := top.Stuncheck(t, append(expectIPs(), "--timeout", "3s",
				"--kubeconfig", kc[top.Client], "-n", kubeNamespace, "svc/stund")...)
			v := strings.Index(text.Stdout, "verdict: "+sc.verdict)
			if text.Exit != sc.exit || v < 0 {
				t.Errorf("text run: exit %d, verdict line missing", text.Exit)
			}
			for _, id := range sc.want {
				if i := strings.Index(text.Stdout, id); i < v || !strings.Contains(text.Stdout[i:], "fix: ") {
					t.Errorf("text output does not list %s with its fix under the verdict", id)
				}
			}

			after := stund.BindingRequests(t)
			for _, f := range families {
				for _, tr := range transports {
					k := requestKey{Transport: tr, Family: f.Name, SourceClass: sc.class}
					if after[k]-before[k] < 1 {
						t.Errorf(`stund did not count the %s %s probe under source_class=%q: %v`, tr, f.Name, sc.class, after)
					}
				}
			}
		})
	}
}

// waitSynced waits until stund logs that its informers have synced.
func (s *Stund) waitSynced(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.Proc.Output(), "kubernetes: watching") {
			return
		}
		if exited, err := s.Proc.Exited(); exited {
			t.Fatalf("stund exited: %v\n%s", err, s.Proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stund never synced with the stand-in API server:\n%s", s.Proc.Output())
}
