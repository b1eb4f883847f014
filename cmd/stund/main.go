// Command stund is a STUN Binding server (RFC 8489) for UDP and TCP, IPv4
// and IPv6, made to run behind a load balancer and to say when the load
// balancer rewrote the client's source address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"

	"github.com/stund/stund/internal/cpus"
	"github.com/stund/stund/internal/logs"
	"github.com/stund/stund/internal/stund/admin"
	"github.com/stund/stund/internal/stund/server"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listFlag is a repeatable flag whose default comes from the environment;
// the first value given on the command line replaces that default.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)

	return nil
}

// options are the parsed command line.
type options struct {
	listen         listFlag
	httpListen     string
	software       string
	logLevel       string
	logFormat      string
	drainTimeout   time.Duration
	tcpIdleTimeout time.Duration
	rfc3489        bool
	responseOrigin listFlag
	udpSockets     int
	cpus           cpus.Info // what --udp-sockets defaults to, and why
	proxyProtocol  bool
	proxyTrusted   listFlag
	proxyOptional  bool
	rateLimit      float64
	rateBurst      float64
	globalLimit    float64
	rateExempt     listFlag
	rateV6Prefix   int
	maxTCPConns    int
	maxTCPPerSrc   int
	showVersion    bool
	kube           kubeOptions

	// The parsed values of the list flags.
	trusted, exempt listValues[netip.Prefix]
	origins         listValues[netip.AddrPort]
}

const usageHead = `stund: a STUN Binding server (RFC 8489) for UDP and TCP, IPv4 and IPv6.

It answers every Binding request with the source address it saw, in
XOR-MAPPED-ADDRESS. Run it behind a load balancer and check the path with
stuncheck: if the load balancer rewrites the client's source address, clients
are told a wrong public address and WebRTC NAT discovery breaks.

Usage:
  stund [flags]

Every flag can also be set from the environment variable shown in brackets;
a flag on the command line wins.

Flags:
`

const usageTail = `
Exit codes: 0 stopped cleanly, 1 runtime failure (e.g. address in use),
2 bad flag or value.

Examples:
  stund                                      # UDP and TCP on :3478, HTTP on :9478
  stund --listen 127.0.0.1:3478 --listen [::1]:3478 --log-level debug
  STUND_LISTEN=0.0.0.0:3478 stund --http-listen 127.0.0.1:9478
`

// envOr returns the environment variable name's value, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}

	return def
}

func newFlagSet(stderr io.Writer, o *options) (*flag.FlagSet, []error) {
	fs := flag.NewFlagSet("stund", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var envErrs []error
	durationEnv := func(name string, def time.Duration) time.Duration {
		v, ok := os.LookupEnv(name)
		if !ok {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: not a duration (e.g. 5s, 1m)", name, v))

			return def
		}

		return d
	}
	intEnv := func(name string, def int) int {
		v, ok := os.LookupEnv(name)
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: not a whole number", name, v))

			return def
		}

		return n
	}
	floatEnv := func(name string, def float64) float64 {
		v, ok := os.LookupEnv(name)
		if !ok {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: not a number", name, v))

			return def
		}

		return f
	}
	boolEnv := func(name string) bool {
		v, ok := os.LookupEnv(name)
		if !ok {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: want true or false", name, v))
		}

		return b
	}

	if v := envOr("STUND_LISTEN", server.DefaultListen); v != "" {
		o.listen.values = strings.Split(v, ",")
	}
	fs.Var(&o.listen, "listen", "`address` to serve STUN on, UDP and TCP on the same port; repeat for more; port 0 picks a free one [STUND_LISTEN, comma-separated] (default :3478)")
	fs.StringVar(&o.httpListen, "http-listen", envOr("STUND_HTTP_LISTEN", ":9478"), "`address` for /healthz, /readyz and /metrics; empty disables [STUND_HTTP_LISTEN]")
	fs.StringVar(&o.software, "software", envOr("STUND_SOFTWARE", "stund"), "SOFTWARE attribute sent in every response, under 128 bytes; empty sends none [STUND_SOFTWARE]")
	fs.StringVar(&o.logLevel, "log-level", envOr("STUND_LOG_LEVEL", "info"), "`level`: trace, debug (logs every request with its source), info, warn, error or disabled [STUND_LOG_LEVEL]")
	fs.StringVar(&o.logFormat, "log-format", envOr("STUND_LOG_FORMAT", "text"), "log `format`: text or json [STUND_LOG_FORMAT]")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", durationEnv("STUND_DRAIN_TIMEOUT", 5*time.Second), "on SIGTERM or SIGINT, keep answering this long with /readyz at 503 before closing; a second signal stops at once [STUND_DRAIN_TIMEOUT]")
	fs.DurationVar(&o.tcpIdleTimeout, "tcp-idle-timeout", durationEnv("STUND_TCP_IDLE_TIMEOUT", server.DefaultTCPIdleTimeout), "close a TCP connection that completes no message in this time [STUND_TCP_IDLE_TIMEOUT]")
	fs.BoolVar(&o.rfc3489, "rfc3489", boolEnv("STUND_RFC3489"), "also answer classic RFC 3489 clients (no magic cookie) with MAPPED-ADDRESS; off because such servers are used for reflection attacks [STUND_RFC3489]")
	if v := envOr("STUND_RESPONSE_ORIGIN", ""); v != "" {
		o.responseOrigin.values = strings.Split(v, ",")
	}
	fs.Var(&o.responseOrigin, "response-origin", "advertise this `ip:port` in RESPONSE-ORIGIN (RFC 5780), e.g. the load balancer's address; at most one IPv4 and one IPv6, each sent only to clients of its family [STUND_RESPONSE_ORIGIN, comma-separated]")
	o.cpus = cpus.Usable()
	fs.IntVar(&o.udpSockets, "udp-sockets", intEnv("STUND_UDP_SOCKETS", o.cpus.N), "UDP sockets per listen address, each served by its own worker and sharing the port (SO_REUSEPORT); default: one per CPU the process may keep busy (its CPU affinity, lowered to its cgroup CPU limit rounded down) [STUND_UDP_SOCKETS]")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", boolEnv("STUND_PROXY_PROTOCOL"), "take the client address from PROXY protocol headers (v1/v2 on TCP, v2 on UDP) sent by --proxy-trusted-cidr sources; for proxy load balancers [STUND_PROXY_PROTOCOL]")
	if v := envOr("STUND_PROXY_TRUSTED_CIDR", ""); v != "" {
		o.proxyTrusted.values = strings.Split(v, ",")
	}
	fs.Var(&o.proxyTrusted, "proxy-trusted-cidr", "`CIDR` whose PROXY headers are believed, e.g. the load balancer's address/32; repeat for more; required with --proxy-protocol. Headers from anywhere else are refused [STUND_PROXY_TRUSTED_CIDR, comma-separated]")
	fs.BoolVar(&o.proxyOptional, "proxy-protocol-optional", boolEnv("STUND_PROXY_PROTOCOL_OPTIONAL"), "also answer trusted sources that send no PROXY header, about their own address; off: such traffic is refused so a misconfigured proxy shows at once [STUND_PROXY_PROTOCOL_OPTIONAL]")
	fs.Float64Var(&o.rateLimit, "rate-limit", floatEnv("STUND_RATE_LIMIT", server.DefaultRateLimit), "answers per second to one source IP after its burst; 0 turns it off. Stops one address from using stund to reflect traffic at a victim [STUND_RATE_LIMIT]")
	fs.Float64Var(&o.rateBurst, "rate-limit-burst", floatEnv("STUND_RATE_LIMIT_BURST", server.DefaultRateLimitBurst), "answers one source IP may get at once, e.g. many clients behind one CGNAT address starting calls [STUND_RATE_LIMIT_BURST]")
	fs.Float64Var(&o.globalLimit, "global-rate-limit", floatEnv("STUND_GLOBAL_RATE_LIMIT", 0), "answers per second for the whole server; 0 means no cap [STUND_GLOBAL_RATE_LIMIT]")
	if v := envOr("STUND_RATE_LIMIT_EXEMPT", ""); v != "" {
		o.rateExempt.values = strings.Split(v, ",")
	}
	fs.Var(&o.rateExempt, "rate-limit-exempt", "`CIDR` never rate limited and not subject to --max-tcp-conns-per-source: a known NAT pool, or a load balancer that SNATs every client; repeatable [STUND_RATE_LIMIT_EXEMPT, comma-separated]")
	fs.IntVar(&o.rateV6Prefix, "rate-limit-ipv6-prefix", intEnv("STUND_RATE_LIMIT_IPV6_PREFIX", server.DefaultIPv6Prefix), "prefix `length` that makes one IPv6 source for the rate limits and --max-tcp-conns-per-source: anyone holds at least a /64 and can rotate through it; 48 to 128 (each address on its own) [STUND_RATE_LIMIT_IPV6_PREFIX]")
	fs.IntVar(&o.maxTCPConns, "max-tcp-conns", intEnv("STUND_MAX_TCP_CONNS", 10000), "open TCP connections at most; more are reset at once; 0 means no cap [STUND_MAX_TCP_CONNS]")
	fs.IntVar(&o.maxTCPPerSrc, "max-tcp-conns-per-source", intEnv("STUND_MAX_TCP_CONNS_PER_SOURCE", 100), "open TCP connections from one IP at most; 0 means no cap [STUND_MAX_TCP_CONNS_PER_SOURCE]")
	addKubeFlags(fs, &o.kube)
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.SetOutput(io.Discard) // errors are reported by run, in one line
	fs.Usage = func() {}

	return fs, envErrs
}

// printFlags lists the flags GNU style (--name), as the README and the
// examples write them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		_, _ = fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(usage, "(default") {
			_, _ = fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		_, _ = fmt.Fprintln(w)
	})
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}

	return "dev"
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs, envErrs := newFlagSet(stderr, &o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = io.WriteString(stdout, usageHead)
			printFlags(stdout, fs)
			_, _ = io.WriteString(stdout, usageTail)

			return exitOK
		}
		_, _ = fmt.Fprintf(stderr, "stund: %v\nRun 'stund --help' for usage.\n", err)

		return exitUsage
	}
	if o.showVersion {
		_, _ = fmt.Fprintf(stdout, "stund %s\n", buildVersion())

		return exitOK
	}
	usageErr := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "stund: %v\n", err)

		return exitUsage
	}
	if len(envErrs) > 0 {
		return usageErr(envErrs[0])
	}
	if fs.NArg() > 0 {
		return usageErr(fmt.Errorf("unexpected argument %q: stund takes only flags (see --help)", fs.Arg(0)))
	}
	level, err := logs.ParseLevel(o.logLevel)
	if err != nil {
		return usageErr(fmt.Errorf("--log-level: %w", err))
	}
	logFactory, err := logs.New(stderr, o.logFormat, level)
	if err != nil {
		return usageErr(fmt.Errorf("--log-format: %w", err))
	}
	// client-go logs with klog, to stderr in klog's own format unless
	// told otherwise: its lines go through stund's logger instead.
	klog.SetLoggerWithOptions(logFactory.Logr("kube"), klog.ContextualLogger(true))
	if len(o.listen.values) == 0 {
		return usageErr(errors.New("--listen: at least one address is needed"))
	}
	if o.drainTimeout < 0 {
		return usageErr(fmt.Errorf("--drain-timeout %s: must not be negative", o.drainTimeout))
	}
	// Zero means "the default" to server.New, but these flags show their
	// default in --help and take it from there: a zero is the user's, and
	// refused in the words server.New's refusal of a negative one gets.
	switch {
	case o.tcpIdleTimeout == 0:
		return usageErr(fmt.Errorf(msgTCPIdleTimeout, o.tcpIdleTimeout))
	case o.udpSockets == 0:
		return usageErr(fmt.Errorf(msgUDPSockets, o.udpSockets))
	case o.rateV6Prefix == 0:
		return usageErr(fmt.Errorf(msgIPv6Prefix, o.rateV6Prefix, server.MinIPv6Prefix, server.MaxIPv6Prefix))
	}
	if o.trusted, err = parsePrefixes("--proxy-trusted-cidr", o.proxyTrusted.values); err != nil {
		return usageErr(err)
	}
	if o.exempt, err = parsePrefixes("--rate-limit-exempt", o.rateExempt.values); err != nil {
		return usageErr(err)
	}
	if o.origins, err = parseOrigins(o.responseOrigin.values); err != nil {
		return usageErr(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := server.NewMetrics(reg, buildVersion())
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "stund: metrics: %v\n", err)

		return exitRuntime
	}
	classifier, err := o.kube.build(logFactory)
	if err != nil {
		return usageErr(o.flagError(err))
	}
	srv, err := server.New(server.Config{
		Classifier:     classifier,
		Listen:         o.listen.values,
		Software:       o.software,
		ResponseOrigin: o.origins.values,
		RFC3489:        o.rfc3489,
		TCPIdleTimeout: o.tcpIdleTimeout,
		UDPSockets:     o.udpSockets,
		ProxyProtocol:  o.proxyProtocol,
		ProxyTrusted:   o.trusted.values,
		ProxyOptional:  o.proxyOptional,
		RateLimit: server.RateLimit{
			PerSource:  o.rateLimit,
			Burst:      o.rateBurst,
			Global:     o.globalLimit,
			Exempt:     o.exempt.values,
			IPv6Prefix: o.rateV6Prefix,
		},
		MaxTCPConns:          o.maxTCPConns,
		MaxTCPConnsPerSource: o.maxTCPPerSrc,
		Metrics:              metrics,
		LoggerFactory:        logFactory,
	})
	if err != nil {
		return usageErr(o.flagError(err))
	}
	o.kube.logMode()

	return serve(srv, reg, o, logFactory, stderr)
}

// The words of usage errors about values server.New refuses; the first,
// second and last are also those of the command's own refusal of a zero,
// which server.New takes for "the default".
const (
	msgTCPIdleTimeout = "--tcp-idle-timeout %s: must be positive"
	msgUDPSockets     = "--udp-sockets %d: want 1 or more"
	msgRateBurst      = "--rate-limit-burst %g: want at least 1 with --rate-limit"
	msgIPv6Prefix     = "--rate-limit-ipv6-prefix %d: want %d to %d"
)

// flagError words an error of server.New or kubeclass.New for the command
// line: a refused value is named by the flag that set it and quoted as
// the user wrote it. Other errors, which name no field a flag sets in
// other words, are returned as they are.
func (o *options) flagError(err error) error {
	var ce *server.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Field {
	case "TCPIdleTimeout":
		return fmt.Errorf(msgTCPIdleTimeout, ce.Value)
	case "UDPSockets":
		if n, ok := ce.Value.(int); ok && n < 1 {
			return fmt.Errorf(msgUDPSockets, n)
		}
	case "ProxyTrusted", "ProxyOptional":
		switch {
		case errors.Is(err, server.ErrProxyNoTrusted):
			return errors.New("--proxy-protocol needs --proxy-trusted-cidr: a PROXY header is only believed from the load balancer's addresses, otherwise anyone could claim any source")
		case errors.Is(err, server.ErrProxyUnused):
			return errors.New("--proxy-trusted-cidr and --proxy-protocol-optional take effect only with --proxy-protocol")
		case errors.Is(err, server.ErrMappedPrefix):
			return mappedPrefixError(o.trusted, ce.Value)
		}
	case "RateLimit.Exempt":
		return mappedPrefixError(o.exempt, ce.Value)
	case "Classifier.Internal", "Internal": // a StaticClassifier's, or kubeclass's
		return mappedPrefixError(o.kube.internalCIDRs, ce.Value)
	case "RateLimit.PerSource", "RateLimit.Burst", "RateLimit.Global":
		v, _ := ce.Value.(float64)
		if ce.Field == "RateLimit.Burst" && v >= 0 {
			return fmt.Errorf(msgRateBurst, v)
		}
		name := map[string]string{"RateLimit.PerSource": "--rate-limit", "RateLimit.Burst": "--rate-limit-burst", "RateLimit.Global": "--global-rate-limit"}[ce.Field]

		return fmt.Errorf("%s %g: must not be negative", name, v)
	case "RateLimit.IPv6Prefix":
		return fmt.Errorf(msgIPv6Prefix, ce.Value, server.MinIPv6Prefix, server.MaxIPv6Prefix)
	case "MaxTCPConns", "MaxTCPConnsPerSource":
		return errors.New("--max-tcp-conns and --max-tcp-conns-per-source must not be negative")
	case "ResponseOrigin":
		if pair, ok := ce.Value.([]netip.AddrPort); ok && len(pair) == 2 {
			fam := "IPv6"
			if pair[1].Addr().Unmap().Is4() {
				fam = "IPv4"
			}

			return fmt.Errorf("--response-origin %s and %s: both %s; give at most one IPv4 and one IPv6 address", pair[0], pair[1], fam)
		}
		if a, ok := ce.Value.(netip.AddrPort); ok {
			return badOrigin(o.origins.text(a))
		}
	case "Namespace":
		return errors.New("--service needs --namespace (or POD_NAMESPACE)")
	}

	return err
}

// listValues are the values of a repeatable flag with the text each was
// parsed from, so that an error about a value quotes what the user wrote.
type listValues[T comparable] struct {
	flag   string
	values []T
	texts  []string
}

// text returns what the user wrote for v.
func (l listValues[T]) text(v T) string {
	if i := slices.Index(l.values, v); i >= 0 {
		return l.texts[i]
	}

	return fmt.Sprint(v)
}

// mappedPrefixError is the error for the IPv4-mapped IPv6 prefix v given
// to l's flag: it names the IPv4 prefix meant.
func mappedPrefixError(l listValues[netip.Prefix], v any) error {
	p, ok := v.(netip.Prefix)
	if !ok {
		return fmt.Errorf("%s: an IPv4-mapped IPv6 prefix never matches, IPv4 sources are compared as IPv4", l.flag)
	}
	hint := "write it as an IPv4 prefix"
	if p.Bits() >= 96 {
		hint = "did you mean " + netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).String() + "?"
	}

	return fmt.Errorf("%s %q: an IPv4-mapped IPv6 prefix never matches, IPv4 sources are compared as IPv4; %s", l.flag, l.text(p), hint)
}

// badOrigin is the error for a --response-origin that is not an address
// clients can reach.
func badOrigin(text string) error {
	return fmt.Errorf("--response-origin %q: want the ip:port or [ipv6]:port clients reach stund at", text)
}

// parseOrigins parses the --response-origin values: ip:port each.
// server.New checks that clients can reach them, at most one per family.
func parseOrigins(values []string) (listValues[netip.AddrPort], error) {
	out := listValues[netip.AddrPort]{flag: "--response-origin"}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		a, err := netip.ParseAddrPort(v)
		if err != nil {
			return out, badOrigin(v)
		}
		out.values, out.texts = append(out.values, a), append(out.texts, v)
	}

	return out, nil
}

// parsePrefixes parses CIDRs given to flag; a bare address is taken as a
// single host (/32 or /128). A prefix with host bits set is refused with
// the prefix meant; server.New and kubeclass.New refuse an IPv4-mapped
// one.
func parsePrefixes(flag string, values []string) (listValues[netip.Prefix], error) {
	out := listValues[netip.Prefix]{flag: flag}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err == nil {
			if p != p.Masked() {
				return out, fmt.Errorf("%s %q: host bits set; did you mean %s?", flag, v, p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return out, fmt.Errorf("%s %q: want a CIDR such as 10.0.0.0/8 or an address", flag, v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.values, out.texts = append(out.values, p), append(out.texts, v)
	}

	return out, nil
}

// maxAmplification is the ratio of answer to request bytes past which
// stund warns at start: the default success answer is 2.6 times the
// smallest request, and a STUN reflector is reckoned at about 2.3.
const maxAmplification = 3

// warnAmplification warns when --software or --response-origin make an
// answer more than maxAmplification times the request that draws it:
// what a forged-source flood gets reflected at its victim, per byte. An
// IPv6 answer's address counts at an IPv4 one's size (RatioAsIPv4): the
// 12 bytes more are the client's own address, which no flag adds, and
// judging them would warn at every dual-stack start with the defaults.
func warnAmplification(log logging.LeveledLogger, srv *server.Server, o options) {
	a := srv.MaxAmplification()
	if a.RatioAsIPv4() <= maxAmplification {
		return
	}
	var flags []string
	if o.software != "" {
		flags = append(flags, fmt.Sprintf("--software %q (%d bytes)", o.software, len(o.software)))
	}
	if len(o.responseOrigin.values) > 0 {
		flags = append(flags, "--response-origin")
	}
	fam := "IPv4"
	if a.IPv6 {
		fam = "IPv6"
	}
	log.Warnf("answers to %s clients reach %d bytes for a %d-byte request (%.1fx, over %dx) with %s: a forged-source flood gets that much reflected at its victim. A shorter --software or none, and no --response-origin unless RFC 5780 clients need it, keep answers small",
		fam, a.Response, a.Request, a.Ratio(), maxAmplification, strings.Join(flags, " and "))
}

// logUDPWorkers says how the UDP workers meet the CPUs: a warning when
// there are more of them than CPUs the process may keep busy (they take
// turns, which adds latency), and a note when a cgroup CPU limit set
// fewer than the runtime's GOMAXPROCS, which rounds that limit up.
func logUDPWorkers(log logging.LeveledLogger, o options) {
	switch {
	case o.udpSockets > o.cpus.N:
		log.Warnf("--udp-sockets %d: more workers per address than the CPUs this process may keep busy, %s: they take turns on the CPUs, which adds latency under load; the default, %d, does not",
			o.udpSockets, o.cpus, o.cpus.N)
	case o.cpus.N < runtime.GOMAXPROCS(0):
		log.Infof("udp: %d socket(s) per address; CPUs this process may keep busy: %s", o.udpSockets, o.cpus)
	}
}

// serve runs the servers until a signal, then drains and stops them.
func serve(srv *server.Server, reg *prometheus.Registry, o options, lf *logs.Factory, stderr io.Writer) int {
	log := lf.NewLogger("stund")
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ctx := context.Background()
	var adm *admin.Server
	if o.httpListen != "" {
		adm = admin.New(admin.Config{Listen: o.httpListen, Gatherer: reg, LoggerFactory: lf})
		if err := adm.Start(ctx); err != nil {
			_, _ = fmt.Fprintf(stderr, "stund: --http-listen: %v\n", err)

			return exitRuntime
		}
	}
	defer o.kube.start()()
	if err := srv.Start(ctx); err != nil {
		_, _ = fmt.Fprintf(stderr, "stund: --listen: %v\n", err)
		if adm != nil {
			_ = adm.Shutdown(ctx)
		}

		return exitRuntime
	}
	warnAmplification(log, srv, o)
	logUDPWorkers(log, o)
	o.kube.waitSynced()
	if adm != nil {
		adm.SetReady(true)
	}
	log.Infof("stund %s ready", buildVersion())

	sig := <-sigs
	if adm != nil {
		adm.SetReady(false)
	}
	if o.drainTimeout > 0 {
		log.Infof("%s: draining for %s (/readyz is 503; a second signal stops at once)", sig, o.drainTimeout)
		timer := time.NewTimer(o.drainTimeout)
		select {
		case <-timer.C:
		case sig = <-sigs:
			log.Infof("%s: stopping now", sig)
			timer.Stop()
		}
	}
	// Closing is bounded, but a signal now still ends stund at once.
	stopped := make(chan int, 1)
	go func() { stopped <- stop(srv, adm, log) }()
	select {
	case code := <-stopped:
		log.Info("stopped")

		return code
	case sig = <-sigs:
		log.Warnf("%s: exiting without waiting for connections to close", sig)

		return exitOK
	}
}

// adminStopTimeout bounds the admin server's shutdown: requests still in
// flight then, or connections that sent nothing yet, are closed.
const adminStopTimeout = 500 * time.Millisecond

// stop closes the STUN server and the admin server side by side. Both are
// bounded (server.Close by its grace for busy connections), so stund exits
// within about half a second of the drain's end whatever its clients do.
func stop(srv *server.Server, adm *admin.Server, log logging.LeveledLogger) int {
	var stunErr, admErr error
	var wg sync.WaitGroup
	wg.Go(func() { stunErr = srv.Close() })
	if adm != nil {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), adminStopTimeout)
			defer cancel()
			admErr = adm.Shutdown(ctx)
		})
	}
	wg.Wait()
	code := exitOK
	if stunErr != nil {
		log.Errorf("close: %v", stunErr)
		code = exitRuntime
	}
	if admErr != nil {
		log.Errorf("%v", admErr)
		code = exitRuntime
	}

	return code
}
