package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/stund/stund/pkg/check"
)

// Defaults of Config.
const (
	// DefaultListen is the exporter's HTTP address.
	DefaultListen = ":9479"
	// DefaultMaxConcurrent is how many probes run at once.
	DefaultMaxConcurrent = 16
	// maxConns caps open HTTP connections.
	maxConns = 256
	// historySize is how many probes the page lists.
	historySize = 50
	// scrapeOffset is kept from the scrape timeout for the answer to
	// travel back: at most this, and at most a tenth of the timeout.
	scrapeOffset = 500 * time.Millisecond
)

// HTTP server timeouts. A /probe answer takes up to MaxTimeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = MaxTimeout + 10*time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
)

// Config configures an Exporter.
type Config struct {
	// ConfigFile is the YAML module file; empty means DefaultFile.
	ConfigFile string
	// MaxConcurrent caps the probes running at once; zero means
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// LoggerFactory creates the logger; nil means pion's default.
	LoggerFactory logging.LoggerFactory

	// run and lookup replace the check engine in tests.
	run    func(ctx context.Context, cfg check.Config) (*check.Report, error)
	lookup lookupFunc
	now    func() time.Time
}

// Exporter serves the prober's HTTP endpoints. Create it with New.
type Exporter struct {
	cfg     Config
	log     logging.LeveledLogger
	file    atomic.Pointer[File]
	reload  sync.Mutex
	slots   chan struct{}
	cache   *ipCache
	reg     *prometheus.Registry
	m       selfMetrics
	history history
}

type selfMetrics struct {
	probes       *prometheus.CounterVec
	errors       *prometheus.CounterVec
	lookups      *prometheus.CounterVec
	inFlight     prometheus.Gauge
	reloadOK     prometheus.Gauge
	reloadOKTime prometheus.Gauge
}

// Errors of /probe requests, the values of the error label.
const (
	errBadRequest = "bad-request"
	errNotAllowed = "target-not-allowed"
	errOverloaded = "overloaded"
	errResolve    = "resolve"
	errCheck      = "check"
)

// New loads the configuration and returns the exporter. A refused file
// is a *ConfigError (errors.Is(err, ErrConfig)).
func New(cfg Config) (*Exporter, error) {
	if cfg.MaxConcurrent < 0 {
		return nil, fmt.Errorf("max concurrent probes %d: must be positive", cfg.MaxConcurrent)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	if cfg.run == nil {
		cfg.run = func(ctx context.Context, c check.Config) (*check.Report, error) {
			ch, err := check.New(c)
			if err != nil {
				return nil, err
			}

			return ch.Run(ctx)
		}
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	e := &Exporter{cfg: cfg, log: cfg.LoggerFactory.NewLogger("exporter"), slots: make(chan struct{}, cfg.MaxConcurrent)}
	if e.cfg.lookup == nil {
		e.cfg.lookup = e.discover
	}
	e.initMetrics()
	e.cache = newIPCache(e.cfg.lookup, cfg.now, func(f check.Family, ok bool) {
		res := "success"
		if !ok {
			res = "failure"
		}
		e.m.lookups.WithLabelValues(string(f), res).Inc()
	})
	f := DefaultFile()
	if cfg.ConfigFile != "" {
		var err error
		if f, err = LoadFile(cfg.ConfigFile); err != nil {
			return nil, err
		}
	}
	e.file.Store(f)
	e.m.reloadOK.Set(1)
	e.m.reloadOKTime.Set(float64(cfg.now().Unix()))

	return e, nil
}

func (e *Exporter) initMetrics() {
	e.reg = prometheus.NewRegistry()
	e.m = selfMetrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stuncheck_exporter_probes_total",
			Help: "Probes run, by module and whether the target passed.",
		}, []string{"module", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stuncheck_exporter_probe_errors_total",
			Help: "/probe requests that ran no check or whose target did not resolve, by error.",
		}, []string{"error"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stuncheck_exporter_public_ip_lookups_total",
			Help: "Public IP lookups from reference servers (the cache's misses), by family and result.",
		}, []string{"family", "result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stuncheck_exporter_probes_in_flight",
			Help: "Probes running now.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stuncheck_exporter_config_last_reload_successful",
			Help: "1 when the last configuration (re)load succeeded.",
		}),
		reloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stuncheck_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	for _, r := range []string{"success", "failure"} {
		for _, f := range families {
			e.m.lookups.WithLabelValues(f, r)
		}
	}
	for _, er := range []string{errBadRequest, errNotAllowed, errOverloaded, errResolve, errCheck} {
		e.m.errors.WithLabelValues(er)
	}
	e.reg.MustRegister(e.m.probes, e.m.errors, e.m.lookups, e.m.inFlight, e.m.reloadOK, e.m.reloadOKTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Reload reads the configuration file again. When the new file is
// refused, the exporter keeps the configuration it has and returns why.
func (e *Exporter) Reload() error {
	e.reload.Lock()
	defer e.reload.Unlock()
	if e.cfg.ConfigFile == "" {
		return nil
	}
	f, err := LoadFile(e.cfg.ConfigFile)
	if err != nil {
		e.m.reloadOK.Set(0)
		e.log.Errorf("reload: keeping the current configuration: %v", err)

		return err
	}
	e.file.Store(f)
	e.m.reloadOK.Set(1)
	e.m.reloadOKTime.Set(float64(e.cfg.now().Unix()))
	e.log.Infof("reloaded %s: %d modules", e.cfg.ConfigFile, len(f.Modules))

	return nil
}

// Handler returns the endpoints: /probe, /metrics, /healthz, /-/reload,
// the browser check at /check and the page at /.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /probe", e.serveProbe)
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := e.Reload(); err != nil {
			http.Error(w, "reload failed, keeping the current configuration: "+err.Error(), http.StatusInternalServerError)

			return
		}
		_, _ = fmt.Fprintln(w, "reloaded")
	})
	mux.HandleFunc("GET /check", serveCheck)
	mux.HandleFunc("GET /{$}", e.servePage)

	return mux
}

// ListenAndServe serves Handler on addr until ctx is done, then shuts
// down, giving requests in flight a few seconds. ready, when not nil, is
// called with the bound address.
func (e *Exporter) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           e.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	e.log.Infof("listening on %s", ln.Addr())
	if ready != nil {
		ready(ln.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(netutil.LimitListener(ln, maxConns)) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}

	return nil
}

// probeRequest is a validated /probe request.
type probeRequest struct {
	module     *Module
	target     check.Target
	transports []check.Transport
	expect     []netip.Addr
	budget     time.Duration
}

// badRequest is a /probe request refused before any check: its status
// and what to tell the client.
type badRequest struct {
	status int
	label  string
	msg    string
}

func (b *badRequest) Error() string { return b.msg }

func bad(format string, a ...any) *badRequest {
	return &badRequest{status: http.StatusBadRequest, label: errBadRequest, msg: fmt.Sprintf(format, a...)}
}

// parseProbe validates a /probe request against the configuration.
func parseProbe(r *http.Request, f *File) (*probeRequest, *badRequest) {
	q := r.URL.Query()
	name := q.Get("module")
	if name == "" {
		name = DefaultModule
	}
	m, ok := f.Modules[name]
	if !ok {
		return nil, bad("unknown module %q (the page at / lists them)", name)
	}
	raw := q.Get("target")
	if raw == "" {
		return nil, bad("target parameter is missing")
	}
	tg, err := check.ParseTarget(raw)
	if err != nil {
		return nil, bad("%v", err)
	}
	if len(m.Targets) > 0 && !slices.Contains(m.Targets, raw) {
		msg := fmt.Sprintf("module %s probes only the targets it lists; %q is not one of them", name, raw)

		return nil, &badRequest{status: http.StatusForbidden, label: errNotAllowed, msg: msg}
	}
	req := &probeRequest{module: m, target: tg, transports: m.Transports, expect: m.ExpectIPs, budget: m.Timeout}
	if s := q.Get("transport"); s != "" {
		req.transports = nil
		for _, part := range strings.Split(s, ",") {
			tr := check.Transport(strings.ToLower(strings.TrimSpace(part)))
			if !slices.Contains(m.Transports, tr) {
				return nil, bad("transport %q: module %s probes %s", part, name, joinTransports(m.Transports))
			}
			if slices.Contains(req.transports, tr) {
				return nil, bad("transport %q given twice", part)
			}
			req.transports = append(req.transports, tr)
		}
	}
	if vals := q["expect_ip"]; len(vals) > 0 {
		req.expect = nil
		for _, v := range vals {
			for _, s := range strings.Split(v, ",") {
				ip, err := parseExpectIP(s, req.expect)
				if err != nil {
					return nil, bad("expect_ip: %v", err)
				}
				req.expect = append(req.expect, ip)
			}
		}
	}
	if h := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); h != "" {
		secs, err := strconv.ParseFloat(h, 64)
		if err != nil || secs <= 0 {
			return nil, bad("X-Prometheus-Scrape-Timeout-Seconds %q: want a positive number of seconds", h)
		}
		req.budget = min(req.budget, scrapeBudget(time.Duration(secs*float64(time.Second))))
	}

	return req, nil
}

// scrapeBudget is the time a probe may take within a scrape timeout: the
// timeout less a margin for the answer.
func scrapeBudget(timeout time.Duration) time.Duration {
	return timeout - min(scrapeOffset, timeout/10)
}

func joinTransports(trs []check.Transport) string {
	s := make([]string, len(trs))
	for i, t := range trs {
		s[i] = string(t)
	}

	return strings.Join(s, ",")
}

func (e *Exporter) serveProbe(w http.ResponseWriter, r *http.Request) {
	f := e.file.Load()
	req, berr := parseProbe(r, f)
	if berr != nil {
		e.m.errors.WithLabelValues(berr.label).Inc()
		http.Error(w, berr.msg, berr.status)

		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), req.budget)
	defer cancel()
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		e.m.errors.WithLabelValues(errOverloaded).Inc()
		http.Error(w, fmt.Sprintf("%d probes already running (--max-concurrent): none finished within this probe's %s",
			cap(e.slots), req.budget), http.StatusServiceUnavailable)

		return
	}
	e.m.inFlight.Inc()
	o, errMsg := e.probe(ctx, f, req)
	e.m.inFlight.Dec()
	<-e.slots

	res := "failure"
	if o.success() {
		res = "success"
	}
	e.m.probes.WithLabelValues(req.module.Name, res).Inc()
	e.history.add(probeRecord{
		When: e.cfg.now(), Module: req.module.Name, Target: req.target.Input,
		Transports: joinTransports(req.transports), Outcome: o, Error: errMsg,
	})
	promhttp.HandlerFor(probeRegistry(o), promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// probe runs one check within ctx and returns its outcome, and why no
// probe ran when none did.
func (e *Exporter) probe(ctx context.Context, f *File, req *probeRequest) (outcome, string) {
	start := time.Now()
	cfg := check.Config{
		Targets:       []check.Target{req.target},
		Transports:    req.transports,
		Timeout:       req.budget,
		References:    []string{}, // public IPs come from the cache
		LoggerFactory: e.cfg.LoggerFactory,
	}
	turnConfig(&cfg, req.module)
	cfg.ExpectIPs = e.publicIPs(ctx, f, req)
	rep, err := e.cfg.run(ctx, cfg)
	o := outcome{Duration: time.Since(start)}
	if err != nil {
		label := errCheck
		if errors.Is(err, check.ErrResolve) {
			label = errResolve
		}
		e.m.errors.WithLabelValues(label).Inc()
		e.log.Debugf("probe %s: %v", req.target.Input, err)

		return o, err.Error()
	}
	o.Results = resultsOf(rep)

	return o, ""
}

// publicIPs are the public IPs to compare with: the request's or module's
// expected IPs, and for the other families of the target the cached IP
// that the module's references report.
func (e *Exporter) publicIPs(ctx context.Context, f *File, req *probeRequest) []netip.Addr {
	ips := slices.Clone(req.expect)
	have := func(fam check.Family) bool {
		return slices.ContainsFunc(ips, func(ip netip.Addr) bool { return familyOf(ip) == fam })
	}
	refs := req.module.References
	if refs == nil {
		refs = check.DefaultReferences
	}
	if len(refs) == 0 {
		return ips
	}
	for _, fam := range e.targetFamilies(ctx, req.target) {
		if have(fam) {
			continue
		}
		if ip := e.cache.get(ctx, refs, fam, f.PublicIPCache); ip.IsValid() {
			ips = append(ips, ip)
		}
	}

	return ips
}

// targetFamilies are the families a target's probes will use.
func (e *Exporter) targetFamilies(ctx context.Context, t check.Target) []check.Family {
	if ip, ok := t.IP(); ok {
		return []check.Family{familyOf(ip)}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.Host)
	if err != nil {
		return nil // the check reports the name
	}
	var out []check.Family
	for _, ip := range ips {
		if fam := familyOf(ip); !slices.Contains(out, fam) {
			out = append(out, fam)
		}
	}

	return out
}

func familyOf(ip netip.Addr) check.Family {
	if ip.Unmap().Is4() {
		return check.IPv4
	}

	return check.IPv6
}

// discover is the default lookup: the references' majority, by check.
func (e *Exporter) discover(ctx context.Context, refs []string, f check.Family) netip.Addr {
	p, err := check.DiscoverPublicIP(ctx, check.Config{References: refs, LoggerFactory: e.cfg.LoggerFactory}, f)
	if err != nil {
		e.log.Warnf("public %s lookup: %v", f, err)

		return netip.Addr{}
	}
	if !p.IP.IsValid() {
		e.log.Warnf("public %s lookup: %s", f, p.Detail)
	}

	return p.IP
}
