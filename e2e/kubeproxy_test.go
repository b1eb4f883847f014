//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The scenarios against the real cluster: kube-apiserver and etcd, the
// chart installed with Helm, kube-proxy in nftables and iptables mode on
// two nodes, and the VIP delivered to one of them with the destination
// kept. `go test -tags e2e -run KubeProxy ./e2e/...` runs them alone.

const (
	etpCluster = corev1.ServiceExternalTrafficPolicyCluster
	etpLocal   = corev1.ServiceExternalTrafficPolicyLocal
)

// eachMode runs fn in a fresh cluster for every kube-proxy mode.
func eachMode(t *testing.T, fn func(t *testing.T, k *KubeLab)) {
	for _, mode := range kubeProxyModes {
		t.Run(mode, func(t *testing.T) {
			k := NewKubeLab(t, mode)
			fn(t, k)
			k.expectOwnLogFormat(t)
		})
	}
}

// probeVIP runs stuncheck against the VIP over one transport and checks
// its exit code and the mapped address; stund must have counted the
// request under class. mapped "" means no answer.
func (k *KubeLab) probeVIP(t *testing.T, target, transport string, exit int, mapped, class string) CheckRun {
	t.Helper()
	var before map[requestKey]float64
	if k.Stund != nil {
		before = k.Stund.BindingRequests(t)
	}
	run := k.Stuncheck(t, "--expect-ip", ipv4.Public, "--transport", transport, "--timeout", "2s", "-o", "json", target)
	if run.Exit != exit {
		t.Errorf("stuncheck %s over %s: exit %d, want %d\n%s%s", target, transport, run.Exit, exit, run.Stdout, run.Stderr)
	}
	if len(run.Report.Probes) != 1 {
		t.Fatalf("%d probes, want 1: %+v", len(run.Report.Probes), run.Report.Probes)
	}
	if got := deref(run.Report.Probes[0].Mapped); !strings.HasPrefix(got, mapped+":") && !(mapped == "" && got == "null") {
		t.Errorf("mapped address %q, want %s", got, mapped)
	}
	if class != "" && k.Stund != nil {
		after := k.Stund.BindingRequests(t)
		key := requestKey{Transport: transport, Family: "ipv4", SourceClass: class}
		if after[key]-before[key] < 1 {
			t.Errorf("stund did not count the %s request under source_class=%q: %v", transport, class, after)
		}
	}
	return run
}

// vip is the load balancer's STUN address.
var vip = hostPort(ipv4.VIP, stunPort)

// nodePortOf returns node's address with the Service's NodePort for proto.
func (k *KubeLab) nodePortOf(t *testing.T, node, proto string) string {
	t.Helper()
	for _, p := range k.Service(t).Spec.Ports {
		if strings.EqualFold(string(p.Protocol), proto) && p.NodePort != 0 {
			return hostPort(node, int(p.NodePort))
		}
	}
	t.Fatalf("the Service has no %s NodePort", proto)
	return ""
}

// serviceCheck runs `stuncheck svc/NAME` with the admin's kubeconfig and
// returns the finding ids.
func (k *KubeLab) serviceCheck(t *testing.T, exit int) (kubeReport, []string) {
	t.Helper()
	run := k.Stuncheck(t, "--expect-ip", ipv4.Public, "--timeout", "2s", "-o", "json",
		"--kubeconfig", k.Kubeconfig(), "-n", clusterNS, "svc/"+kubeRelease)
	if run.Exit != exit {
		t.Errorf("stuncheck svc/%s: exit %d, want %d\n%s", kubeRelease, run.Exit, exit, run.Stderr)
	}
	var rep kubeReport
	if err := json.Unmarshal([]byte(run.Stdout), &rep); err != nil {
		t.Fatalf("stuncheck JSON: %v", err)
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
	return rep, ids
}

func finding(rep kubeReport, id string) string {
	for _, f := range *rep.Findings {
		if f.ID == id {
			return f.Message + " " + f.Fix
		}
	}
	return ""
}

func expectFindings(t *testing.T, ids, want, wantNone []string) {
	t.Helper()
	for _, id := range want {
		if !slices.Contains(ids, id) {
			t.Errorf("findings %q lack %s", ids, id)
		}
	}
	for _, id := range wantNone {
		if slices.Contains(ids, id) {
			t.Errorf("findings %q include %s", ids, id)
		}
	}
}

// rewriteEvents returns the SourceIPRewritten Events on the Service.
func (k *KubeLab) rewriteEvents(t *testing.T) []corev1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := k.API.CoreV1().Events(clusterNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list Events: %v", err)
	}
	var evs []corev1.Event
	for _, e := range list.Items {
		if e.Reason == "SourceIPRewritten" {
			evs = append(evs, e)
		}
	}
	return evs
}

// expectOneEvent waits for stund's SourceIPRewritten Event on the Service
// and checks that there is exactly one and that it names source in plain
// IPv4.
func (k *KubeLab) expectOneEvent(t *testing.T, source string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var evs []corev1.Event
	for {
		if evs = k.rewriteEvents(t); len(evs) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(evs) != 1 {
		t.Fatalf("%d SourceIPRewritten Events, want 1: %+v", len(evs), evs)
	}
	e := evs[0]
	t.Logf("Event %s on %s %s/%s: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name, e.Message)
	if e.InvolvedObject.Kind != "Service" || e.InvolvedObject.Name != kubeRelease {
		t.Errorf("the Event is on %s %s, want Service %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, kubeRelease)
	}
	if !strings.Contains(e.Message, source) || strings.Contains(e.Message, "::ffff:") {
		t.Errorf("the Event's message does not name %s in plain IPv4: %q", source, e.Message)
	}
}

// expectOwnLogFormat checks that every line stund wrote is its JSON log
// (the chart's log format): client-go's own messages included, no raw
// klog lines.
func (k *KubeLab) expectOwnLogFormat(t *testing.T) {
	t.Helper()
	if k.Stund == nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(k.Stund.Proc.Output()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("stund wrote a line that is not its JSON log: %q", line)
		}
	}
}

// browserSees has headless Chromium on the client gather ICE candidates
// with stun:VIP:3478, the WebRTC team's own view: its srflx candidate must
// be want, and stund must have counted the request under class.
func (k *KubeLab) browserSees(t *testing.T, want, class string) {
	t.Helper()
	before := k.Stund.BindingRequests(t)
	srflx := srflxCandidates(gatherICE(t, k.Client, "stun:"+vip))
	if len(srflx) == 0 {
		t.Fatal("Chromium gathered no srflx candidate through the VIP")
	}
	for _, c := range srflx {
		if c.Address != want || c.RelatedAddress != ipv4.Public {
			t.Errorf("Chromium's srflx candidate %s (related %s), want %s (related %s)", c.Address, c.RelatedAddress, want, ipv4.Public)
		}
	}
	after := k.Stund.BindingRequests(t)
	if key := (requestKey{"udp", "ipv4", class}); after[key]-before[key] < 1 {
		t.Errorf("stund did not count Chromium's request under source_class=%q: %v", class, after)
	}
}

// healthCheck asks kube-proxy's healthCheckNodePort on node from the
// client, as a cloud load balancer does.
func (k *KubeLab) healthCheck(t *testing.T, node string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := k.Client.HTTPGet(ctx, "http://"+hostPort(node, kubeHCPort)+"/")
	if err != nil {
		t.Fatalf("GET the health check on %s: %v", node, err)
	}
	return code, body
}

// TestKubeProxyETPClusterOtherNode: externalTrafficPolicy Cluster, the VIP
// delivered to the node without the endpoint. kube-proxy there forwards to
// the pod on node-a and masquerades to its own address: stund sees node-b.
func TestKubeProxyETPClusterOtherNode(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		k.SetETP(t, etpCluster)
		k.RouteVIP(t, k.NodeB)
		s := k.StartStund(t, "")
		s.waitSynced(t)
		for _, tr := range transports {
			t.Run(tr, func(t *testing.T) {
				k.probeVIP(t, vip, tr, 1, kubeNodeB, "node")
			})
			t.Run("nodeport-"+tr, func(t *testing.T) {
				k.probeVIP(t, k.nodePortOf(t, kubeNodeB, tr), tr, 1, kubeNodeB, "node")
			})
		}
		t.Run("svc", func(t *testing.T) {
			rep, ids := k.serviceCheck(t, 1)
			expectFindings(t, ids, []string{"etp-cluster", "snat-node-ip"}, []string{"snat-pod-cidr", "snat-node-gateway"})
			if msg := finding(rep, "snat-node-ip"); !strings.Contains(msg, "node-b") {
				t.Errorf("snat-node-ip does not name node-b: %q", msg)
			}
			// The text a user reads: the findings under the verdict, each
			// with its fix.
			text := k.Stuncheck(t, "--expect-ip", ipv4.Public, "--timeout", "2s",
				"--kubeconfig", k.Kubeconfig(), "-n", clusterNS, "svc/"+kubeRelease)
			v := strings.Index(text.Stdout, "verdict: rewritten")
			if text.Exit != 1 || v < 0 {
				t.Errorf("text run: exit %d, verdict line missing", text.Exit)
			}
			for _, id := range []string{"etp-cluster", "snat-node-ip"} {
				if i := strings.Index(text.Stdout, id); i < v || !strings.Contains(text.Stdout[i:], "fix: ") {
					t.Errorf("the text output does not list %s with its fix under the verdict", id)
				}
			}
		})
		t.Run("event", func(t *testing.T) { k.expectOneEvent(t, kubeNodeB) })
		t.Run("browser", func(t *testing.T) { k.browserSees(t, kubeNodeB, "node") })
	})
}

// TestKubeProxyETPClusterEndpointNode: externalTrafficPolicy Cluster, the
// VIP delivered to the node that runs the pod. kube-proxy still
// masquerades, to the node's address on the pod network (the first of its
// pod CIDR): that is kube-proxy, not a proxy pod.
func TestKubeProxyETPClusterEndpointNode(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		k.SetETP(t, etpCluster)
		s := k.StartStund(t, "")
		s.waitSynced(t)
		for _, tr := range transports {
			t.Run(tr, func(t *testing.T) {
				k.probeVIP(t, vip, tr, 1, ipv4.PodGW, "node")
			})
		}
		t.Run("svc", func(t *testing.T) {
			rep, ids := k.serviceCheck(t, 1)
			expectFindings(t, ids, []string{"etp-cluster", "snat-node-gateway"}, []string{"snat-pod-cidr"})
			msg := finding(rep, "snat-node-gateway")
			if !strings.Contains(msg, "kube-proxy") || !strings.Contains(msg, "node-a") || strings.Contains(msg, "sidecar") {
				t.Errorf("snat-node-gateway does not name kube-proxy's masquerade on node-a: %q", msg)
			}
		})
		t.Run("event", func(t *testing.T) { k.expectOneEvent(t, ipv4.PodGW) })
	})
}

// TestKubeProxyETPLocalOtherNode: externalTrafficPolicy Local, the VIP
// delivered to the node without endpoints: kube-proxy drops it, and its
// health check says so (503) where the endpoint's node says 200.
func TestKubeProxyETPLocalOtherNode(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		k.RouteVIP(t, k.NodeB)
		s := k.StartStund(t, "")
		s.waitSynced(t)
		for _, tr := range transports {
			t.Run(tr, func(t *testing.T) {
				k.probeVIP(t, vip, tr, 3, "", "")
			})
		}
		t.Run("health-check", func(t *testing.T) {
			if hc := k.Service(t).Spec.HealthCheckNodePort; hc != kubeHCPort {
				t.Fatalf("healthCheckNodePort %d, want %d", hc, kubeHCPort)
			}
			for _, c := range []struct {
				node        string
				code, local int
			}{{kubeNodeA, 200, 1}, {kubeNodeB, 503, 0}} {
				code, body := k.healthCheck(t, c.node)
				var hc struct {
					LocalEndpoints *int `json:"localEndpoints"`
				}
				if err := json.Unmarshal([]byte(body), &hc); err != nil || hc.LocalEndpoints == nil ||
					code != c.code || *hc.LocalEndpoints != c.local {
					t.Errorf("health check on %s: %d %q, want %d with localEndpoints %d", c.node, code, body, c.code, c.local)
				}
			}
		})
		t.Run("svc", func(t *testing.T) {
			rep, ids := k.serviceCheck(t, 3)
			expectFindings(t, ids, []string{"endpoints-not-on-all-nodes", "health-check"}, []string{"etp-cluster"})
			// stuncheck asked kube-proxy's health check on each node.
			got := map[string]int{}
			for _, hc := range rep.HealthChecks {
				if hc.Status != nil {
					got[hc.Node] = *hc.Status
				}
			}
			if got["node-a"] != 200 || got["node-b"] != 503 || len(rep.HealthChecks) != 2 {
				t.Errorf("health_checks %+v, want node-a 200 and node-b 503", rep.HealthChecks)
			}
			if msg := finding(rep, "endpoints-not-on-all-nodes"); !strings.Contains(msg, "node-b") ||
				!strings.Contains(msg, "healthCheckNodePort "+strconv.Itoa(kubeHCPort)) {
				t.Errorf("endpoints-not-on-all-nodes does not name node-b and the health check: %q", msg)
			}
		})
		if n := len(k.rewriteEvents(t)); n != 0 {
			t.Errorf("%d SourceIPRewritten Events without any rewritten source", n)
		}
	})
}

// TestKubeProxyETPLocalEndpointNode: externalTrafficPolicy Local, the VIP
// delivered to the endpoint's node: the client's address reaches stund.
func TestKubeProxyETPLocalEndpointNode(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		s := k.StartStund(t, "")
		s.waitSynced(t)
		for _, tr := range transports {
			t.Run(tr, func(t *testing.T) {
				k.probeVIP(t, vip, tr, 0, ipv4.Public, "client")
			})
			t.Run("nodeport-"+tr, func(t *testing.T) {
				k.probeVIP(t, k.nodePortOf(t, kubeNodeA, tr), tr, 0, ipv4.Public, "client")
			})
		}
		t.Run("svc", func(t *testing.T) {
			_, ids := k.serviceCheck(t, 0)
			expectFindings(t, ids, nil, []string{"etp-cluster", "snat-node-ip", "snat-node-gateway", "snat-pod-cidr"})
		})
		t.Run("browser", func(t *testing.T) { k.browserSees(t, ipv4.Public, "client") })
		if n := len(k.rewriteEvents(t)); n != 0 {
			t.Errorf("%d SourceIPRewritten Events without any rewritten source", n)
		}
	})
}

// TestKubeProxyETPSwitch: changing externalTrafficPolicy through the API
// changes what stund sees once kube-proxy has programmed it; the test
// waits on kube-proxy's sync metrics, never a fixed sleep.
func TestKubeProxyETPSwitch(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		s := k.StartStund(t, "")
		s.waitSynced(t)
		for i, step := range []struct {
			etp    corev1.ServiceExternalTrafficPolicy
			exit   int
			mapped string
			class  string
		}{
			{etpLocal, 0, ipv4.Public, "client"},
			{etpCluster, 1, ipv4.PodGW, "node"},
			{etpLocal, 0, ipv4.Public, "client"},
		} {
			t.Run(fmt.Sprintf("%d-%s", i, strings.ToLower(string(step.etp))), func(t *testing.T) {
				if i > 0 {
					k.SetETP(t, step.etp)
				}
				for _, tr := range transports {
					k.probeVIP(t, vip, tr, step.exit, step.mapped, step.class)
				}
			})
		}
	})
}

// TestKubeProxyNoRBAC: stund with a ServiceAccount token that RBAC grants
// nothing keeps serving, says once, in its own log format, what it cannot
// see, and classifies sources by address ranges alone.
func TestKubeProxyNoRBAC(t *testing.T) {
	eachMode(t, func(t *testing.T, k *KubeLab) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := k.API.CoreV1().ServiceAccounts(clusterNS).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "no-rbac"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		k.SetETP(t, etpCluster)
		k.RouteVIP(t, k.NodeB)
		s := k.StartStund(t, "no-rbac")
		for _, tr := range transports {
			t.Run(tr, func(t *testing.T) {
				k.probeVIP(t, vip, tr, 1, kubeNodeB, "private")
			})
		}
		// Several list retries have failed by now; each resource is
		// reported once.
		time.Sleep(3 * time.Second)
		out := s.Proc.Output()
		t.Logf("stund's log:\n%s", out)
		for _, resource := range []string{"nodes", "services", "endpointslices"} {
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "forbidden") && strings.Contains(line, `\"`+resource+`\"`) ||
					strings.Contains(line, "forbidden") && strings.Contains(line, `"`+resource+`"`) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("stund reported %d times that it may not list %s, want once:\n%s", n, resource, out)
			}
		}
		if n := len(k.rewriteEvents(t)); n != 0 {
			t.Errorf("%d SourceIPRewritten Events written without RBAC", n)
		}
	})
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
	t.Fatalf("stund never synced with the API server:\n%s", s.Proc.Output())
}
