package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stund/stund/internal/cluster/clustertest"
	"github.com/stund/stund/internal/golden"
	"github.com/stund/stund/internal/kubetest"
)

// healthLab is the passthrough lab (externalTrafficPolicy Local, stund's
// endpoint on worker-1 at 127.0.0.1) with a healthCheckNodePort and three
// more nodes: kube-proxy answers 200 on worker-1 and 503 on worker-2
// (127.0.0.2, no endpoint); nothing listens on worker-3 (127.0.0.3) and
// worker-4 (127.0.0.4) accepts but never answers.
func healthLab(t *testing.T) (kubeconfig string, port int) {
	t.Helper()
	serve := func(addr string, h http.Handler) net.Listener {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Skipf("listen %s: %v (needs all of 127.0.0.0/8 on loopback, as Linux has)", addr, err)
		}
		s := httptest.NewUnstartedServer(h)
		s.Listener = l
		s.Start()
		t.Cleanup(s.Close)

		return l
	}
	l := serve("127.0.0.1:0", kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 1})
	port = l.Addr().(*net.TCPAddr).Port
	p := strconv.Itoa(port)
	serve("127.0.0.2:"+p, kubetest.HealthCheck{Namespace: "lab", Name: "stund"})
	serve("127.0.0.4:"+p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	kubeconfig, _ = lab(t, corev1.ServiceExternalTrafficPolicyLocal, "127.0.0.1", true, func(svc *corev1.Service, objs *[]runtime.Object) {
		svc.Spec.HealthCheckNodePort = int32(port)
		*objs = append(*objs,
			clustertest.Node("worker-2", "127.0.0.2", ""),
			clustertest.Node("worker-3", "127.0.0.3", ""),
			clustertest.Node("worker-4", "127.0.0.4", ""))
	})

	return kubeconfig, port
}

// TestServiceHealthChecks: stuncheck svc/NAME reads kube-proxy's health
// check on every node and reports it as health_checks[] and the
// health-check finding, leaving the rest of the report as it was.
func TestServiceHealthChecks(t *testing.T) {
	kc, port := healthLab(t)
	r := stuncheck(t, nil, "-o", "json", "--timeout", "2s", "--kubeconfig", kc, "-n", "lab", "--expect-ip", "127.0.0.1", "svc/stund")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 (unreachable nodes are no failure)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &top); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"findings", "health_checks", "probes", "public_ips", "verdict"}; !slices.Equal(keys, want) {
		t.Errorf("top-level keys %q, want %q", keys, want)
	}
	ids, fs := findingIDs(t, r.stdout)
	if want := []string{"endpoints-not-on-all-nodes", "health-check", "mixed-protocol"}; !slices.Equal(ids, want) {
		t.Errorf("findings %q, want %q", ids, want)
	}
	for _, f := range fs {
		if f.ID == "health-check" && (f.Severity != "info" || !strings.Contains(f.Message, "worker-1 200 (1 local endpoint), worker-2 503 (no local endpoint)")) {
			t.Errorf("health-check finding %+v", f)
		}
	}
	type hc struct {
		Target         string  `json:"target"`
		Node           string  `json:"node"`
		Address        *string `json:"address"`
		Status         *int    `json:"status"`
		LocalEndpoints *int    `json:"local_endpoints"`
		Healthy        *bool   `json:"service_proxy_healthy"`
		Error          string  `json:"error"`
	}
	var hcs []hc
	if err := json.Unmarshal(top["health_checks"], &hcs); err != nil {
		t.Fatal(err)
	}
	p := ":" + strconv.Itoa(port)
	want := []string{
		"svc/stund worker-1 127.0.0.1" + p + " 200 1 true ",
		"svc/stund worker-2 127.0.0.2" + p + " 503 0 true ",
		"svc/stund worker-3 127.0.0.3" + p + " - - - unreachable: connection refused",
		"svc/stund worker-4 127.0.0.4" + p + " - - - unreachable: i/o timeout",
	}
	var got []string
	str := func(v any) string {
		switch v := v.(type) {
		case *string:
			if v != nil {
				return *v
			}
		case *int:
			if v != nil {
				return strconv.Itoa(*v)
			}
		case *bool:
			if v != nil {
				return strconv.FormatBool(*v)
			}
		}

		return "-"
	}
	for _, h := range hcs {
		got = append(got, strings.Join([]string{h.Target, h.Node, str(h.Address), str(h.Status), str(h.LocalEndpoints), str(h.Healthy), h.Error}, " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("health_checks\n%q\nwant\n%q", got, want)
	}
}

// TestServiceHealthChecksText is what a user reads: the nodes' answers
// listed under the findings.
func TestServiceHealthChecksText(t *testing.T) {
	kc, port := healthLab(t)
	r := stuncheck(t, nil, "--timeout", "2s", "--kubeconfig", kc, "-n", "lab", "--expect-ip", "127.0.0.1", "svc/stund")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The probes' lines hold stund's and the client's ports, the rest the
	// health check port.
	hcPort, probePort := regexp.MustCompile(`\b`+strconv.Itoa(port)+`\b`), regexp.MustCompile(`127\.0\.0\.1:\d+`)
	lines := strings.SplitAfter(r.stdout, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "you ") || strings.Contains(l, "The server saw") {
			lines[i] = probePort.ReplaceAllString(l, "127.0.0.1:PORT")
		} else {
			lines[i] = hcPort.ReplaceAllString(l, "HCPORT")
		}
	}
	got := strings.Join(lines, "")
	golden.Assert(t, "health.golden.txt", []byte(got))
	if f, h := strings.Index(got, "findings (3):"), strings.Index(got, "health checks of svc/stund (4 nodes):"); f < 0 || h < f {
		t.Errorf("health checks are not listed under the findings:\n%s", got)
	}
}
