//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exporterAddr is where stuncheck exporter listens in the client
// namespace; Prometheus, in the same namespace, scrapes it there.
const exporterAddr = "127.0.0.1:9479"

// exporterConfig has the exporter learn the client's public IP from the
// lab's reference server, once per family.
var exporterConfig = fmt.Sprintf(`public_ip_cache: 1h
modules:
  default:
    transports: [udp, tcp]
    timeout: 3s
    references: [%q, %q]
`, hostPort(ipv4.Reference, stunPort), hostPort(ipv6.Reference, stunPort))

// startExporter runs stuncheck exporter in the client namespace.
func (top *Topology) startExporter(t *testing.T) *Proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "exporter.yml")
	if err := os.WriteFile(cfg, []byte(exporterConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := top.Client.Start(binPath(t, "stuncheck"), "exporter", "--listen", exporterAddr, "--config", cfg)
	waitListening(t, top.Client, p, "tcp", 9479)
	return p
}

// clientGet fetches url from the client namespace and fails on anything
// but 200.
func (top *Topology) clientGet(t *testing.T, rawURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	code, body, err := top.Client.HTTPGet(ctx, rawURL)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v\n%s", rawURL, code, err, body)
	}
	return body
}

// scrape asks the exporter to probe target, as Prometheus would.
func (top *Topology) scrape(t *testing.T, target string) string {
	t.Helper()
	body := top.clientGet(t, "http://"+exporterAddr+"/probe?"+url.Values{"target": {target}}.Encode())
	t.Logf("probe %s:\n%s", target, grepProbe(body))
	return body
}

// grepProbe keeps the probe metrics of an answer, for the log.
func grepProbe(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "stuncheck_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, l+"\n") {
			t.Errorf("answer lacks %s", l)
		}
	}
}

// TestExporterLoadBalancerSwitch probes the VIP through the preserving
// load balancer, switches the load balancer to SNAT and probes again:
// the next scrape says rewritten.
func TestExporterLoadBalancerSwitch(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.StartStund(t)
	StartCoturn(t, top.Reference, []string{ipv4.Reference, ipv6.Reference}, "--no-rfc5780")
	top.startExporter(t)

	for _, f := range families {
		body := top.scrape(t, "stun:"+hostPort(f.VIP, stunPort))
		wantLines(t, body, "stuncheck_probe_success 1")
		for _, tr := range transports {
			wantLines(t, body,
				fmt.Sprintf(`stuncheck_probe_verdict{family=%q,reason="same-address",transport=%q,verdict="preserved"} 1`, f.Name, tr),
				fmt.Sprintf(`stuncheck_probe_mapped_preserved{family=%q,transport=%q} 1`, f.Name, tr))
		}
		for _, addr := range []string{f.Public, f.VIP, f.LBInside} {
			if strings.Contains(body, addr) {
				t.Errorf("the answer names the address %s", addr)
			}
		}
	}

	// The cloud load balancer starts SNATing to its inside address.
	top.LB.NFT("flush ruleset\n" + lbRules(CloudSNAT))
	for _, f := range families {
		body := top.scrape(t, "stun:"+hostPort(f.VIP, stunPort))
		wantLines(t, body, "stuncheck_probe_success 0")
		for _, tr := range transports {
			wantLines(t, body,
				fmt.Sprintf(`stuncheck_probe_verdict{family=%q,reason="private-address",transport=%q,verdict="rewritten"} 1`, f.Name, tr),
				fmt.Sprintf(`stuncheck_probe_mapped_preserved{family=%q,transport=%q} 0`, f.Name, tr))
		}
		if strings.Contains(body, f.LBInside) {
			t.Errorf("the answer names the address the server saw, %s", f.LBInside)
		}
	}

	// Four scrapes, one public IP lookup per family.
	metrics := top.clientGet(t, "http://"+exporterAddr+"/metrics")
	wantLines(t, metrics,
		`stuncheck_exporter_public_ip_lookups_total{family="ipv4",result="success"} 1`,
		`stuncheck_exporter_public_ip_lookups_total{family="ipv6",result="success"} 1`,
		`stuncheck_exporter_probes_total{module="default",result="success"} 2`,
		`stuncheck_exporter_probes_total{module="default",result="failure"} 2`)
	page := top.clientGet(t, "http://"+exporterAddr+"/")
	if !strings.Contains(page, "stun:"+hostPort(ipv4.VIP, stunPort)) || !strings.Contains(page, "rewritten (private-address)") {
		t.Errorf("the page does not list the last probes:\n%s", page)
	}
}

// TestExporterPrometheusAlert runs Prometheus with the shipped scrape
// configuration and rules (short intervals and for: durations) against
// the exporter, and watches StunSourceIPRewritten fire once the load
// balancer starts SNATing.
func TestExporterPrometheusAlert(t *testing.T) {
	requireTool(t, "prometheus", "prometheus")
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.StartStund(t)
	StartCoturn(t, top.Reference, []string{ipv4.Reference, ipv6.Reference}, "--no-rfc5780")
	top.startExporter(t)

	dir := t.TempDir()
	vip := hostPort(ipv4.VIP, stunPort)
	promCfg := edit(t, readDeploy(t, "prometheus/prometheus.yml"), map[string]string{
		"scrape_interval: 30s":     "scrape_interval: 1s",
		"evaluation_interval: 30s": "evaluation_interval: 1s",
		"scrape_timeout: 10s":      "scrape_timeout: 1s",
		"- stun:stun.example.com:3478\n          - 198.51.100.7:3478": "- " + vip,
		"replacement: 127.0.0.1:9479":                                 "replacement: " + exporterAddr,
		"targets: [127.0.0.1:9479]":                                   "targets: [" + exporterAddr + "]",
	})
	rules := regexp.MustCompile(`(?m)^(\s+for:) \S+$`).ReplaceAllString(readDeploy(t, "prometheus/stuncheck-rules.yml"), "$1 3s")
	for name, content := range map[string]string{"prometheus.yml": promCfg, "stuncheck-rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const promAddr = "127.0.0.1:9090"
	prom := top.Client.Start("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	waitListening(t, top.Client, prom, "tcp", 9090)
	api := "http://" + promAddr + "/api/v1/"

	// Prometheus sees the path preserved, and nothing fires.
	waitFor(t, 30*time.Second, "Prometheus to scrape stuncheck_probe_success 1", func() bool {
		return queryValue(t, top, api, `stuncheck_probe_success{job="stuncheck"}`) == "1"
	})
	time.Sleep(4 * time.Second) // longer than for:
	if a := alerts(t, top, api); len(a) != 0 {
		t.Fatalf("alerts with a preserving load balancer: %+v", a)
	}

	top.LB.NFT("flush ruleset\n" + lbRules(CloudSNAT))
	var fired []promAlert
	waitFor(t, 60*time.Second, "StunSourceIPRewritten to fire", func() bool {
		fired = nil
		for _, a := range alerts(t, top, api) {
			if a.Labels["alertname"] == "StunSourceIPRewritten" && a.State == "firing" {
				fired = append(fired, a)
			}
		}
		return len(fired) == len(transports)
	})
	for _, a := range fired {
		t.Logf("firing: %v: %s", a.Labels, a.Annotations["summary"])
		if a.Labels["instance"] != vip || a.Labels["reason"] != "private-address" || a.Labels["family"] != "ipv4" {
			t.Errorf("alert labels %v, want instance %s, family ipv4, reason private-address", a.Labels, vip)
		}
	}
	for _, a := range alerts(t, top, api) {
		if a.Labels["alertname"] == "StunProbeFailing" {
			t.Errorf("StunProbeFailing is %s for a rewritten source: that is StunSourceIPRewritten's", a.State)
		}
	}
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces each key of repl, which must occur exactly once, so that
// the test notices when the shipped file changes shape.
func edit(t *testing.T, s string, repl map[string]string) string {
	t.Helper()
	for old, new := range repl {
		if n := strings.Count(s, old); n != 1 {
			t.Fatalf("deploy file: %q occurs %d times, want once", old, n)
		}
		s = strings.Replace(s, old, new, 1)
	}
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// queryValue is the value of an instant query with one result, or "".
func queryValue(t *testing.T, top *Topology, api, query string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := top.Client.HTTPGet(ctx, api+"query?"+url.Values{"query": {query}}.Encode())
	if err != nil || code != 200 {
		return ""
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &r) != nil || len(r.Data.Result) != 1 {
		return ""
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// alerts are Prometheus' pending and firing alerts.
func alerts(t *testing.T, top *Topology, api string) []promAlert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := top.Client.HTTPGet(ctx, api+"alerts")
	if err != nil || code != 200 {
		t.Fatalf("GET /api/v1/alerts: %d %v", code, err)
	}
	var r struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/api/v1/alerts: %v", err)
	}
	return r.Data.Alerts
}
