package check

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/stund/stund/internal/golden"
)

func intPtr(n int) *int    { return &n }
func boolPtr(b bool) *bool { return &b }

// sampleHealthChecks are three nodes' answers to kube-proxy's health
// check: one with the endpoint, one without, one out of reach.
func sampleHealthChecks() []HealthCheck {
	return []HealthCheck{
		{Target: "svc/stund", Node: "worker-1", Address: netip.MustParseAddrPort("10.1.0.2:32000"), Status: 200,
			LocalEndpoints: intPtr(1), ServiceProxyHealthy: boolPtr(true)},
		{Target: "svc/stund", Node: "worker-2", Address: netip.MustParseAddrPort("[fd00:1::3]:32000"), Status: 503,
			LocalEndpoints: intPtr(0), ServiceProxyHealthy: boolPtr(true)},
		{Target: "svc/stund", Node: "control-plane-1", Address: netip.MustParseAddrPort("10.1.0.4:32000"), Error: "unreachable: i/o timeout"},
	}
}

func TestHealthCheckSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    HealthCheck
		want string
	}{
		{"one endpoint", HealthCheck{Status: 200, LocalEndpoints: intPtr(1)}, "200 (1 local endpoint)"},
		{"endpoints", HealthCheck{Status: 200, LocalEndpoints: intPtr(3)}, "200 (3 local endpoints)"},
		{"none", HealthCheck{Status: 503, LocalEndpoints: intPtr(0), ServiceProxyHealthy: boolPtr(true)}, "503 (no local endpoint)"},
		{"kube-proxy unhealthy", HealthCheck{Status: 503, LocalEndpoints: intPtr(2), ServiceProxyHealthy: boolPtr(false)}, "503 (2 local endpoints, kube-proxy unhealthy)"},
		{"status only", HealthCheck{Status: 404}, "404"},
		{"bad body", HealthCheck{Status: 200, Error: "body is not kube-proxy's JSON"}, "200 (body is not kube-proxy's JSON)"},
		{"no answer", HealthCheck{Error: "unreachable: connection refused"}, "unreachable: connection refused"},
		{"no answer, no reason", HealthCheck{}, "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Summary(); got != tc.want {
				t.Errorf("Summary() = %q, want %q", got, tc.want)
			}
		})
	}
}

// Health checks render in JSON as health_checks[] and in text under the
// findings; without any the key is absent and the text unchanged.
func TestGoldenHealthChecks(t *testing.T) {
	rep := sampleReport()
	rep.Findings = sampleFindings()
	var before bytes.Buffer
	_ = rep.WriteText(&before, TextOptions{})
	rep.HealthChecks = sampleHealthChecks()
	var txt, js bytes.Buffer
	if err := rep.WriteText(&txt, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.health.golden.txt", txt.Bytes())
	out := txt.String()
	if !strings.HasPrefix(out, before.String()) {
		t.Error("health checks change the text before them")
	}
	if f, h := strings.Index(out, "mixed-protocol"), strings.Index(out, "health checks of svc/stund (3 nodes):"); f < 0 || h < f {
		t.Errorf("health checks are not under the findings:\n%s", out)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.health.golden.json", js.Bytes())

	var doc struct {
		Findings     []map[string]any `json:"findings"`
		HealthChecks []map[string]any `json:"health_checks"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Findings) != 4 || len(doc.HealthChecks) != 3 {
		t.Fatalf("%d findings, %d health checks", len(doc.Findings), len(doc.HealthChecks))
	}
	want := []map[string]any{
		{"target": "svc/stund", "node": "worker-1", "address": "10.1.0.2:32000", "status": 200.0, "local_endpoints": 1.0, "service_proxy_healthy": true},
		{"target": "svc/stund", "node": "worker-2", "address": "[fd00:1::3]:32000", "status": 503.0, "local_endpoints": 0.0, "service_proxy_healthy": true},
		{"target": "svc/stund", "node": "control-plane-1", "address": "10.1.0.4:32000", "status": nil, "local_endpoints": nil, "error": "unreachable: i/o timeout"},
	}
	for i, w := range want {
		g := doc.HealthChecks[i]
		if len(g) != len(w) {
			t.Errorf("health_checks[%d] has keys %v, want %v", i, g, w)
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || gv != v {
				t.Errorf("health_checks[%d].%s = %v (present %v), want %v", i, k, gv, ok, v)
			}
		}
	}

	rep.HealthChecks = nil
	js.Reset()
	_ = rep.WriteJSON(&js)
	if strings.Contains(js.String(), "health_checks") {
		t.Error("health_checks key without health checks")
	}
}
