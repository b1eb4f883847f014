package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stund/stund/internal/kubetest"
)

var syncedRE = regexp.MustCompile(`kubernetes: watching (\d+) node addresses`)

// stand-in cluster whose node worker-1 has InternalIP 127.0.0.1: every
// loopback request looks masqueraded by that node.
func standIn(t *testing.T) (kubeconfig string, api *kubetest.Server) {
	t.Helper()
	api = kubetest.New(
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "stund", Namespace: "lab"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{
				Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}},
			}},
		},
	)
	url := api.Start()
	t.Cleanup(api.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(kubeconfig, url, "default"); err != nil {
		t.Fatal(err)
	}

	return kubeconfig, api
}

func classCount(t *testing.T, metrics, transport, class string) string {
	t.Helper()
	re := regexp.MustCompile(`stund_binding_requests_total\{[^}]*source_class="` + class + `"[^}]*transport="` + transport + `"[^}]*\} (\d+)`)
	if m := re.FindStringSubmatch(metrics); m != nil {
		return m[1]
	}
	re = regexp.MustCompile(`stund_binding_requests_total\{[^}]*transport="` + transport + `"[^}]*source_class="` + class + `"[^}]*\} (\d+)`)
	if m := re.FindStringSubmatch(metrics); m != nil {
		return m[1]
	}

	return "0"
}

// waitReadyz waits until /readyz answers 200, failing after readyWait
// and a margin.
func waitReadyz(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(readyWait + 5*time.Second)
	for {
		code, _ := get(t, base+"/readyz")
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricsWhen polls /metrics until ready(metrics) holds or a few seconds
// pass: stund counts a request just after answering it.
func metricsWhen(t *testing.T, base string, ready func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics := get(t, base+"/metrics")
		if ready(metrics) || time.Now().After(deadline) {
			return metrics
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real binary with --kubeconfig, --namespace (from POD_NAMESPACE) and
// --service: requests from a node's address count as source_class="node",
// a warning names the node, and an Event lands on the Service.
func TestKubeClassification(t *testing.T) {
	kc, api := standIn(t)
	p := startStund(t, []string{"POD_NAMESPACE=lab", "POD_NAME=stund-0", "KUBERNETES_SERVICE_HOST="},
		"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--kubeconfig", kc, "--service", "stund")
	stunAddr := p.waitLog(t, stunAddrRE)
	base := "http://" + p.waitLog(t, httpAddrRE)
	// Ready means the cluster is known: the very first requests are
	// classified from it.
	waitReadyz(t, base)
	for _, network := range []string{"udp", "tcp"} {
		if !binding(t, network, stunAddr) {
			t.Fatalf("no %s answer", network)
		}
	}
	metrics := metricsWhen(t, base, func(m string) bool {
		return classCount(t, m, "udp", "node") != "0" && classCount(t, m, "tcp", "node") != "0"
	})
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "stund_binding_requests_total{") && !strings.HasSuffix(l, " 0") {
			t.Log(l)
		}
	}
	for _, tr := range []string{"udp", "tcp"} {
		if got := classCount(t, metrics, tr, "node"); got != "1" {
			t.Errorf(`%s requests with source_class="node": %s, want 1`, tr, got)
		}
		if got := classCount(t, metrics, tr, "private"); got != "0" {
			t.Errorf(`%s requests with source_class="private": %s, want 0`, tr, got)
		}
	}
	if n := p.waitLog(t, syncedRE); n != "1" {
		t.Errorf("watching %s node addresses, want 1", n)
	}
	t.Log(p.waitLog(t, regexp.MustCompile(`(source IP rewritten: .*node "worker-1".*)`)))
	deadline := time.Now().Add(5 * time.Second)
	for len(api.Events()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	evs := api.Events()
	if len(evs) != 1 || evs[0].Reason != "SourceIPRewritten" || evs[0].InvolvedObject.Name != "stund" ||
		evs[0].Namespace != "lab" || evs[0].ReportingInstance != "stund-0" {
		t.Errorf("Events %+v", evs)
	}
}

// An API server that is gone does not stop stund from serving: sources
// are classified by address ranges, and loopback stays "private".
func TestKubeAPIDown(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(kc, "http://127.0.0.1:1", "lab"); err != nil {
		t.Fatal(err)
	}
	p := startStund(t, []string{"STUND_KUBECONFIG=" + kc, "STUND_NAMESPACE=lab", "STUND_SERVICE=stund", "KUBERNETES_SERVICE_HOST="},
		"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	stunAddr := p.waitLog(t, stunAddrRE)
	base := "http://" + p.waitLog(t, httpAddrRE)
	waitReadyz(t, base) // after at most readyWait
	p.waitLog(t, regexp.MustCompile(`(no view of the cluster after 5s)`))
	if !binding(t, "udp", stunAddr) {
		t.Fatal("no answer with the API down")
	}
	metrics := metricsWhen(t, base, func(m string) bool { return classCount(t, m, "udp", "private") != "0" })
	if got := classCount(t, metrics, "udp", "private"); got != "1" {
		t.Errorf(`source_class="private" %s, want 1`, got)
	}
}

// TestServiceWithoutCluster checks that a pod without cluster access (no
// token mounted) still serves: --service only warns.
func TestServiceWithoutCluster(t *testing.T) {
	p := startStund(t, []string{"KUBERNETES_SERVICE_HOST="}, "--service", "stund", "--listen", "127.0.0.1:0", "--http-listen", "")
	p.waitLog(t, regexp.MustCompile(`(--service stund given, but there is no cluster)`))
	if !binding(t, "udp", p.waitLog(t, stunAddrRE)) {
		t.Error("no answer without a cluster")
	}
}

func TestKubeUsageErrors(t *testing.T) {
	kc, _ := standIn(t)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"missing kubeconfig", nil, []string{"--kubeconfig", filepath.Join(t.TempDir(), "nope")}, "--kubeconfig"},
		{"service without a namespace", []string{"POD_NAMESPACE=", "STUND_NAMESPACE="}, []string{"--kubeconfig", kc, "--service", "stund"}, "--namespace"},
		{"bad internal CIDR", nil, []string{"--internal-cidr", "10.0.0.0/33"}, "--internal-cidr"},
		{"bad internal CIDR env", []string{"STUND_INTERNAL_CIDR=10.0.0.1/8"}, nil, "host bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runStund(t, tc.env, append(tc.args, "--listen", "127.0.0.1:0", "--http-listen", "")...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 mentioning %q", code, stderr, tc.want)
			}
		})
	}
	code, help, _ := runStund(t, nil, "--help")
	for _, f := range []string{"--kubeconfig", "--namespace", "--service", "--internal-cidr", "STUND_KUBECONFIG", "POD_NAMESPACE", "STUND_SERVICE", "STUND_INTERNAL_CIDR"} {
		if code != 0 || !strings.Contains(help, f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

// klogHeaderRE matches a line klog writes in its own format (e.g.
// "E1129 17:53:18.701137 reflector.go:227] ..."), not stund's.
var klogHeaderRE = regexp.MustCompile(`^[IEWF]\d{4} `)

// A ServiceAccount whose RBAC does not grant nodes: stund keeps serving,
// says in its own log format, once, that it cannot list them, and no
// line is in klog's format however often client-go retries.
func TestKubeRBACForbidden(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			kc, api := standIn(t)
			api.Forbid("nodes")
			p := startStund(t, []string{"POD_NAMESPACE=lab", "KUBERNETES_SERVICE_HOST="},
				"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--kubeconfig", kc, "--service", "stund", "--log-format", format)
			stunAddr := strings.TrimSuffix(p.waitLog(t, stunAddrRE), `"}`)
			base := "http://" + strings.TrimSuffix(p.waitLog(t, httpAddrRE), `"}`)
			waitReadyz(t, base) // after readyWait: the nodes never sync
			// By now client-go has retried the list a few times.
			p.waitLog(t, regexp.MustCompile(`(no view of the cluster after 5s)`))
			for _, network := range []string{"udp", "tcp"} {
				if !binding(t, network, stunAddr) {
					t.Errorf("no %s answer while nodes are forbidden", network)
				}
			}
			p.waitLog(t, regexp.MustCompile(`(nodes is forbidden)`))
			lines := strings.Split(p.log(), "\n")
			forbidden := 0
			for _, l := range lines {
				if klogHeaderRE.MatchString(l) {
					t.Errorf("a line in klog's format: %s", l)
				}
				if !strings.Contains(l, "nodes is forbidden") {
					continue
				}
				forbidden++
				if !ownFormat(format, "kube", l) {
					t.Errorf("not in stund's %s format with scope kube: %s", format, l)
				}
			}
			if forbidden > 2 {
				t.Errorf("%d lines about the forbidden nodes, want one (two at most):\n%s", forbidden, p.log())
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("stderr:\n%s", p.log())
			}
		})
	}
}

// textLineRE matches a line of stund's text format: time, level, scope.
var textLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ (TRACE|DEBUG|INFO |WARN |ERROR) (\S+): `)

// ownFormat reports whether line is in stund's log format with scope.
func ownFormat(format, scope, line string) bool {
	if format == "json" {
		var v struct{ Time, Level, Scope, Msg string }
		err := json.Unmarshal([]byte(line), &v)

		return err == nil && v.Time != "" && v.Level != "" && v.Scope == scope && v.Msg != ""
	}
	m := textLineRE.FindStringSubmatch(line)

	return m != nil && m[2] == scope
}
