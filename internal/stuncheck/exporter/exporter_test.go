package exporter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/web"
	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/pkg/check"
)

// fakeEngine stands in for the check: it records what it was asked and
// answers with report.
type fakeEngine struct {
	mu       sync.Mutex
	calls    []check.Config
	deadline []time.Duration
	report   func(cfg check.Config) *check.Report
	block    chan struct{} // when not nil, every run waits for it or ctx
	running  atomic.Int32
	maxSeen  atomic.Int32
}

func (f *fakeEngine) run(ctx context.Context, cfg check.Config) (*check.Report, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	dl, _ := ctx.Deadline()
	f.mu.Lock()
	f.calls = append(f.calls, cfg)
	f.deadline = append(f.deadline, time.Until(dl))
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
		}
	}
	if f.report != nil {
		return f.report(cfg), nil
	}

	return &check.Report{Verdict: check.Preserved, Probes: []check.Probe{
		probe(check.UDP, check.IPv4, check.Preserved, check.ReasonSameAddress, "203.0.113.10:40000", time.Millisecond),
	}}, nil
}

func quiet() logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = io.Discard

	return lf
}

func newTest(t *testing.T, configYAML string, eng *fakeEngine, lookup lookupFunc) (*Exporter, *httptest.Server, string) {
	t.Helper()
	path := ""
	if configYAML != "" {
		path = filepath.Join(t.TempDir(), "exporter.yml")
		if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{ConfigFile: path, MaxConcurrent: 2, LoggerFactory: quiet(), lookup: lookup}
	if eng != nil {
		cfg.run = eng.run
	}
	if lookup == nil {
		cfg.lookup = func(context.Context, []string, check.Family) netip.Addr { return netip.MustParseAddr("203.0.113.10") }
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)

	return e, srv, path
}

func get(t *testing.T, rawURL string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)

	return resp.StatusCode, string(b)
}

func probeURL(base string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}

	return base + "/probe?" + q.Encode()
}

// TestProbeRealServer runs the real check against stund on loopback: a
// loopback source is a rewritten one for a client whose public IP is
// 203.0.113.10, and the loopback address appears in no label.
func TestProbeRealServer(t *testing.T) {
	addrs := servertest.Start(t, server.Config{Listen: []string{"127.0.0.1:0"}})
	_, srv, _ := newTest(t, "", nil, nil)
	code, body := get(t, probeURL(srv.URL, "target", addrs[0].String(), "expect_ip", "203.0.113.10"), nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		"stuncheck_probe_success 0",
		`stuncheck_probe_verdict{family="ipv4",reason="loopback-address",transport="udp",verdict="rewritten"} 1`,
		`stuncheck_probe_verdict{family="ipv4",reason="loopback-address",transport="tcp",verdict="rewritten"} 1`,
		`stuncheck_probe_mapped_preserved{family="ipv4",transport="udp"} 0`,
		`stuncheck_probe_rtt_seconds{family="ipv4",transport="tcp"}`,
		"# TYPE stuncheck_probe_duration_seconds gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s:\n%s", want, body)
		}
	}
	checkLabels(t, []byte(body))
	if strings.Contains(body, "127.0.0.1") {
		t.Errorf("an address in the answer:\n%s", body)
	}

	// expect_ip 127.0.0.1 makes the same path preserved.
	_, body = get(t, probeURL(srv.URL, "target", "stun:"+addrs[0].String(), "expect_ip", "127.0.0.1", "transport", "udp"), nil)
	if !strings.Contains(body, "stuncheck_probe_success 1") || strings.Contains(body, `transport="tcp"`) {
		t.Errorf("transport=udp, expect_ip=127.0.0.1: want one preserved UDP probe:\n%s", body)
	}
}

func TestProbeBadRequests(t *testing.T) {
	eng := &fakeEngine{}
	_, srv, _ := newTest(t, "modules:\n  default: {transports: [udp]}\n  only:\n    targets: [\"stun:192.0.2.7\"]\n", eng, nil)
	for _, tc := range []struct {
		name string
		kv   []string
		code int
		want string
	}{
		{"no target", nil, 400, "target parameter is missing"},
		{"bad target", []string{"target", "stuns:x"}, 400, "stuns:"},
		{"unknown module", []string{"target", "192.0.2.1", "module", "nope"}, 400, `unknown module "nope"`},
		{"transport not in module", []string{"target", "192.0.2.1", "transport", "tcp"}, 400, "module default probes udp"},
		{"bad expect_ip", []string{"target", "192.0.2.1", "expect_ip", "x"}, 400, "expect_ip"},
		{"target not listed", []string{"target", "192.0.2.7", "module", "only"}, 403, "probes only the targets it lists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, probeURL(srv.URL, tc.kv...), nil)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("status %d %q, want %d saying %q", code, body, tc.code, tc.want)
			}
		})
	}
	if len(eng.calls) != 0 {
		t.Errorf("%d checks ran for refused requests", len(eng.calls))
	}
	code, _ := get(t, probeURL(srv.URL, "target", "stun:192.0.2.7", "module", "only"), nil)
	if code != 200 || len(eng.calls) != 1 {
		t.Errorf("listed target: status %d, %d checks", code, len(eng.calls))
	}
}

// TestScrapeTimeout checks that the probe fits in the scrape's timeout.
func TestScrapeTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"no header: the module's", "", 3 * time.Second},
		{"longer scrape: the module's", "10", 3 * time.Second},
		{"2s scrape less a tenth", "2", 1800 * time.Millisecond},
		{"2.5s scrape less 250ms", "2.5", 2250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{}
			_, srv, _ := newTest(t, "modules:\n  default: {timeout: 3s}\n", eng, nil)
			h := http.Header{}
			if tc.header != "" {
				h.Set("X-Prometheus-Scrape-Timeout-Seconds", tc.header)
			}
			if code, body := get(t, probeURL(srv.URL, "target", "192.0.2.1"), h); code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if got := eng.calls[0].Timeout; got != tc.want {
				t.Errorf("probe timeout %s, want %s", got, tc.want)
			}
			if d := eng.deadline[0]; d > tc.want || d < tc.want-time.Second {
				t.Errorf("context deadline in %s, want about %s", d, tc.want)
			}
		})
	}
	_, srv, _ := newTest(t, "", &fakeEngine{}, nil)
	h := http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"-1"}}
	if code, _ := get(t, probeURL(srv.URL, "target", "192.0.2.1"), h); code != 400 {
		t.Errorf("negative scrape timeout: status %d, want 400", code)
	}
}

// TestConcurrencyCap checks that at most MaxConcurrent probes run, that
// the others wait, and that one that cannot start within its timeout is
// refused with 503 rather than hanging.
func TestConcurrencyCap(t *testing.T) {
	eng := &fakeEngine{block: make(chan struct{})}
	_, srv, _ := newTest(t, "modules:\n  default: {timeout: 5s}\n  quick: {timeout: 300ms}\n", eng, nil)
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Go(func() { codes[i], _ = get(t, probeURL(srv.URL, "target", "192.0.2.1"), nil) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for eng.running.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Both slots are taken: a short probe gives up waiting.
	code, body := get(t, probeURL(srv.URL, "target", "192.0.2.2", "module", "quick"), nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "2 probes already running") {
		t.Errorf("probe beyond the cap: status %d %q, want 503", code, body)
	}
	close(eng.block)
	wg.Wait()
	if got := eng.maxSeen.Load(); got != 2 {
		t.Errorf("at most %d probes ran at once, want 2", got)
	}
	for i, c := range codes {
		if c != 200 {
			t.Errorf("probe %d: status %d", i, c)
		}
	}
}

// TestPublicIPCache checks that references are asked once per family
// until the cache time has passed.
func TestPublicIPCache(t *testing.T) {
	var lookups atomic.Int32
	lookup := func(_ context.Context, refs []string, f check.Family) netip.Addr {
		lookups.Add(1)
		if f == check.IPv6 || refs[0] != "192.0.2.53:3478" {
			return netip.Addr{}
		}

		return netip.MustParseAddr("203.0.113.10")
	}
	eng := &fakeEngine{}
	e, srv, _ := newTest(t, "public_ip_cache: 1h\nmodules:\n  default: {references: [\"192.0.2.53:3478\"]}\n", eng, lookup)
	now := time.Now()
	var clock atomic.Int64
	e.cache.now = func() time.Time { return now.Add(time.Duration(clock.Load())) }
	for range 3 {
		get(t, probeURL(srv.URL, "target", "192.0.2.1"), nil)
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("%d lookups for 3 scrapes, want 1", n)
	}
	if got := eng.calls[2].ExpectIPs; len(got) != 1 || got[0] != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("the check got expected IPs %v, want the cached 203.0.113.10", got)
	}
	if refs := eng.calls[2].References; refs == nil || len(refs) != 0 {
		t.Errorf("the check got references %v: it must not ask them per scrape", refs)
	}
	clock.Store(int64(2 * time.Hour))
	get(t, probeURL(srv.URL, "target", "192.0.2.1"), nil)
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups after the cache time, want 2", n)
	}
	// A failed lookup (IPv6 here) is retried after failedLookupRetry.
	get(t, probeURL(srv.URL, "target", "2001:db8::1"), nil)
	get(t, probeURL(srv.URL, "target", "2001:db8::1"), nil)
	if n := lookups.Load(); n != 3 {
		t.Errorf("%d lookups, want 3: a failure is kept for a while too", n)
	}
	clock.Store(int64(2*time.Hour + failedLookupRetry + time.Second))
	get(t, probeURL(srv.URL, "target", "2001:db8::1"), nil)
	if n := lookups.Load(); n != 4 {
		t.Errorf("%d lookups, want 4: a failure is retried after %s", n, failedLookupRetry)
	}
	_, metrics := get(t, srv.URL+"/metrics", nil)
	for _, want := range []string{
		`stuncheck_exporter_public_ip_lookups_total{family="ipv4",result="success"} 2`,
		`stuncheck_exporter_public_ip_lookups_total{family="ipv6",result="failure"} 2`,
		`stuncheck_exporter_probes_total{module="default",result="success"} 7`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestReload checks that a refused file keeps the configuration in use,
// through POST /-/reload and Reload (SIGHUP's path).
func TestReload(t *testing.T) {
	e, srv, path := newTest(t, "modules:\n  default: {}\n  a: {}\n", &fakeEngine{}, nil)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	post := func() (int, string) {
		resp, err := http.Post(srv.URL+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)

		return resp.StatusCode, string(b)
	}
	write("modules:\n  default: {}\n  b: {}\n")
	if code, body := post(); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, _ := get(t, probeURL(srv.URL, "target", "192.0.2.1", "module", "b"), nil); code != 200 {
		t.Errorf("module b after reload: status %d", code)
	}
	write("modules:\n  default: {}\n  c:\n    timeout: forever\n")
	code, body := post()
	if code != 500 || !strings.Contains(body, "exporter.yml:4:") {
		t.Errorf("bad reload: %d %q, want 500 naming line 4", code, body)
	}
	if err := e.Reload(); err == nil {
		t.Error("Reload accepted a bad file")
	}
	if code, _ := get(t, probeURL(srv.URL, "target", "192.0.2.1", "module", "b"), nil); code != 200 {
		t.Errorf("module b after a refused reload: status %d, want the old configuration kept", code)
	}
	if code, _ := get(t, probeURL(srv.URL, "target", "192.0.2.1", "module", "c"), nil); code != 400 {
		t.Errorf("module c of the refused file: status %d, want 400", code)
	}
	_, metrics := get(t, srv.URL+"/metrics", nil)
	if !strings.Contains(metrics, "stuncheck_exporter_config_last_reload_successful 0") {
		t.Error("/metrics does not say the last reload failed")
	}
	if resp, err := http.Get(srv.URL + "/-/reload"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %v %v, want 405", resp.Status, err)
	}
}

// TestNoSecretOnAnyPage probes with a module that carries TURN
// credentials and reads every endpoint for the password.
func TestNoSecretOnAnyPage(t *testing.T) {
	const password = "pa55-w0rd-never-shown"
	t.Setenv("STUNCHECK_TEST_TURN_PASSWORD", password)
	eng := &fakeEngine{report: func(check.Config) *check.Report {
		p := probe(check.UDP, check.IPv4, check.Inconclusive, check.ReasonErrorResponse, "", 0)
		p.Detail = "error"

		return &check.Report{Probes: []check.Probe{p}}
	}}
	cfg := "modules:\n  default: {}\n  relay:\n    targets: [\"stun:192.0.2.7\"]\n    turn:\n      username: prober\n      password_env: STUNCHECK_TEST_TURN_PASSWORD\n"
	_, srv, path := newTest(t, cfg, eng, nil)
	var bodies []string
	for _, u := range []string{
		probeURL(srv.URL, "target", "stun:192.0.2.7", "module", "relay"),
		probeURL(srv.URL, "target", "stun:192.0.2.8", "module", "relay"),
		srv.URL + "/", srv.URL + "/metrics", srv.URL + "/healthz",
	} {
		_, b := get(t, u, nil)
		bodies = append(bodies, b)
	}
	// The credentials go nowhere but the listed target.
	if code, _ := get(t, probeURL(srv.URL, "target", "stun:192.0.2.8", "module", "relay"), nil); code != http.StatusForbidden {
		t.Errorf("a target the TURN module does not list: status %d, want 403", code)
	}
	if len(eng.calls) != 1 || eng.calls[0].Targets[0].Input != "stun:192.0.2.7" {
		t.Errorf("checks ran for %v, want only the listed target", eng.calls)
	}
	// A refused reload names the line, not the value.
	if err := os.WriteFile(path, []byte(strings.Replace(cfg, "password_env: STUNCHECK_TEST_TURN_PASSWORD", "password_file: "+password, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	bodies = append(bodies, string(b))
	for i, b := range bodies {
		if strings.Contains(b, password) {
			t.Errorf("answer %d shows the password:\n%s", i, b)
		}
	}
	if !strings.Contains(bodies[2], "relay") || !strings.Contains(bodies[2], "from env") {
		t.Errorf("the page does not list the relay module and where its password comes from:\n%s", bodies[2])
	}
}

func TestPage(t *testing.T) {
	_, srv, _ := newTest(t, "modules:\n  default: {expect_ip: [203.0.113.10]}\n", &fakeEngine{}, nil)
	get(t, probeURL(srv.URL, "target", "<script>x</script>"), nil)
	get(t, probeURL(srv.URL, "target", "stun:192.0.2.9"), nil)
	code, page := get(t, srv.URL+"/", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"default", "203.0.113.10", "stun:192.0.2.9", `href="/probe?module=default&amp;target=stun%3A192.0.2.9&amp;transport=udp%2Ctcp"`, "success"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("page echoes markup unescaped")
	}
	if code, _ := get(t, srv.URL+"/nothing", nil); code != 404 {
		t.Errorf("/nothing: %d, want 404", code)
	}
	if code, body := get(t, srv.URL+"/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

// TestCheckPage: /check is the browser check, byte for byte what
// stuncheck web writes, whatever the query string names.
func TestCheckPage(t *testing.T) {
	_, srv, _ := newTest(t, "modules:\n  default: {}\n", &fakeEngine{}, nil)
	code, page := get(t, srv.URL+"/check?target=stun:192.0.2.9:3478&expect_ip=203.0.113.10", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	want, err := web.Page()
	if err != nil {
		t.Fatal(err)
	}
	if page != string(want) {
		t.Error("/check differs from web.Page()")
	}
	if strings.Contains(page, "192.0.2.9") {
		t.Error("/check echoes its query string: it must run in the browser alone")
	}
}

// TestDeadTargetBlocksNoOther checks that a target that never answers
// holds its own slot until its own timeout only: another target is probed
// while it waits, and the dead one ends when its deadline passes.
func TestDeadTargetBlocksNoOther(t *testing.T) {
	e, srv, _ := newTest(t, "modules:\n  default: {timeout: 2s}\n", nil, nil)
	deadErr := make(chan error, 1)
	e.cfg.run = func(ctx context.Context, cfg check.Config) (*check.Report, error) {
		if cfg.Targets[0].Host == "192.0.2.99" {
			<-ctx.Done() // dead: no answer before the timeout
			deadErr <- ctx.Err()
		}

		return (&fakeEngine{}).run(ctx, cfg)
	}
	done := make(chan string)
	go func() {
		_, body := get(t, probeURL(srv.URL, "target", "192.0.2.99"), nil)
		done <- body
	}()
	for len(e.slots) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := get(t, probeURL(srv.URL, "target", "192.0.2.1"), nil); code != 200 || !strings.Contains(body, "stuncheck_probe_success 1") {
		t.Errorf("live target while another is dead: %d\n%s", code, body)
	}
	if n := len(e.slots); n != 1 {
		t.Errorf("%d probes in flight after the live one: want the dead one still waiting", n)
	}
	if err := <-deadErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the dead probe ended with %v, want its deadline", err)
	}
	if body := <-done; !strings.Contains(body, "stuncheck_probe_duration_seconds") {
		t.Errorf("the dead target's scrape got no metrics:\n%s", body)
	}
}
