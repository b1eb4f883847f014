// Command stuncheck tells whether the path to a STUN server preserves the
// client's source IP address. See pkg/check for the logic.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/diagnose"
	"github.com/stund/stund/pkg/check"
)

// Exit codes; --help lists them.
const (
	exitPreserved = 0
	exitRewritten = 1
	exitUsage     = 2
	exitError     = 3 // inconclusive, or the check could not run
)

const usageText = `Usage: stuncheck [flags] TARGET...
       stuncheck [flags] [--kubeconfig FILE] [--context NAME] [-n NAMESPACE] svc/NAME
       stuncheck load [flags] TARGET      (load test; see stuncheck load --help)
       stuncheck exporter [flags]         (Prometheus prober; see stuncheck exporter --help)
       stuncheck web --out FILE           (browser check page; see stuncheck web --help)

Tells whether the path to a STUN server (a load balancer in front of it,
usually) preserves your source IP. It sends STUN Binding requests over UDP
and TCP and compares the address the server saw with your public IP.

TARGET is host, host:port, [ipv6]:port or a stun: URI (stun:host[:port]).
The port defaults to 3478. A host name is resolved and its first IPv4 and
first IPv6 address are both probed. stuns: (TLS) is not supported.

TARGET turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT] (TLS, port
5349) is a TURN server: stuncheck allocates a relay with the credentials
below, judges the mapped address like a STUN probe's, classifies the relayed
address, sends a datagram from a second local socket through the relay and
back, and releases the allocation. STUN and TURN targets mix freely.

TARGET svc/NAME (or service/NAME) is a Kubernetes Service: stuncheck reads
it, its EndpointSlices and the Nodes, probes every load-balancer ingress
address x port x protocol of it, and adds findings (what rewrites the
source or drops traffic, and the fix) to the output, most severe first.
With externalTrafficPolicy Local it also asks kube-proxy's health check
(healthCheckNodePort) on every node and lists each node's answer; a node
it cannot reach is no error.

Flags:
  --expect-ip IP         your public IP, one per family (repeatable); when
                         given, no reference server is asked for that family
  --reference ADDR       a STUN server outside the load balancer (repeatable),
                         asked over UDP for your public IP; the IP a strict
                         majority of the answering references report wins
                         (default: %s)
  --transport LIST       udp, tcp or udp,tcp (default udp,tcp)
  --timeout DURATION     per probe, total; UDP retransmits within it (RTO
                         500ms, doubling) (default 5s)
  -o, --output FORMAT    text or json (default text)
  --nat-behavior         also run the RFC 5780 NAT mapping and filtering
                         tests over UDP, from the local address that
                         reaches the server, when it sends OTHER-ADDRESS
                         (or a classic RFC 3489 server's CHANGED-ADDRESS)
  --turn-user NAME       TURN username; with --turn-secret, the name part of
                         the REST username EXPIRY:NAME
  --turn-password PASS   TURN password (long-term credentials); the
                         variable keeps it out of shell history and ps
                         (default: $STUNCHECK_TURN_PASSWORD)
  --turn-secret SECRET   TURN REST API shared secret (coturn
                         static-auth-secret): stuncheck makes a username
                         valid for an hour and its HMAC-SHA1 password
                         (default: $STUNCHECK_TURN_SECRET)
  --ca-file FILE         PEM CA certificates that verify turns: servers
                         (default: the system roots)
  --tls-server-name NAME name a turns: server's certificate must carry
                         (default: the target's host)
  -v, --verbose          log discarded packets and retransmissions to stderr
  --kubeconfig FILE      kubeconfig for svc/NAME (default: $KUBECONFIG,
                         ~/.kube/config, or the pod's service account)
  --context NAME         kubeconfig context to use (default: the current one)
  -n, --namespace NS     namespace of svc/NAME (default: the context's)
  -h, --help             show this help

Colour is used only when stdout is a terminal and NO_COLOR is not set.

Passwords and secrets are never printed, in text or JSON.

Exit codes:
  0  every probe preserved your source IP (and every TURN probe
     authenticated, got a usable relayed address and relayed a round trip)
  1  at least one probe saw a rewritten source, or a TURN probe found a
     deployment problem: credentials rejected, a private relayed address,
     a relay that carries nothing, a certificate that does not verify
  2  usage or configuration error (bad flag, bad target, name not found)
  3  inconclusive: no answer, or no known public IP to compare with

Examples:
  stuncheck --expect-ip 203.0.113.10 198.51.100.7
  stuncheck --reference stun.l.google.com:19302 --reference stun.cloudflare.com:3478 stun:stun.example.com
  stuncheck -o json --transport udp --timeout 2s --expect-ip 203.0.113.10 [2001:db8::7]:3478
  stuncheck --kubeconfig ~/.kube/config -n stun --expect-ip 203.0.113.10 svc/stund
  STUNCHECK_TURN_SECRET=... stuncheck --turn-user probe turn:turn.example.com turns:turn.example.com
`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "")
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, color bool) int {
	if len(args) > 0 && args[0] == "load" {
		return runLoad(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "exporter" {
		return runExporter(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "web" {
		return runWeb(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("stuncheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var expect, refs multi
	fs.Var(&expect, "expect-ip", "")
	fs.Var(&refs, "reference", "")
	transport := fs.String("transport", "udp,tcp", "")
	timeout := fs.Duration("timeout", check.DefaultTimeout, "")
	var output string
	fs.StringVar(&output, "o", "text", "")
	fs.StringVar(&output, "output", "text", "")
	nat := fs.Bool("nat-behavior", false, "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	kf := addKubeFlags(fs)
	turnUser := fs.String("turn-user", "", "")
	turnPassword := fs.String("turn-password", os.Getenv("STUNCHECK_TURN_PASSWORD"), "")
	turnSecret := fs.String("turn-secret", os.Getenv("STUNCHECK_TURN_SECRET"), "")
	caFile := fs.String("ca-file", "", "")
	tlsServerName := fs.String("tls-server-name", "", "")

	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stuncheck: "+format+" (see stuncheck --help)\n", a...)

		return exitUsage
	}
	// Flags may come before, between or after targets.
	var targets, services []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, usageText, strings.Join(check.DefaultReferences, ", "))

				return 0
			}

			return usageErr("%v", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if _, ok := diagnose.ParseServiceRef(rest[0]); ok {
			services = append(services, rest[0])
		} else {
			targets = append(targets, rest[0])
		}
		rest = rest[1:]
	}
	if len(targets) == 0 && len(services) == 0 {
		return usageErr("no TARGET given")
	}
	if output != "text" && output != "json" {
		return usageErr("-o %q: want text or json", output)
	}
	if *timeout <= 0 {
		return usageErr("--timeout %s: must be positive", *timeout)
	}

	cfg := check.Config{Timeout: *timeout, NATBehavior: *nat}
	for _, t := range targets {
		pt, err := check.ParseTarget(t)
		if err != nil {
			return usageErr("%v", err)
		}
		cfg.Targets = append(cfg.Targets, pt)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	tc, err := turnConfig(cfg.Targets, set, *turnUser, *turnPassword, *turnSecret, *caFile, *tlsServerName)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg.TURN = tc
	for _, s := range expect {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return usageErr("--expect-ip %q is not an IP address", s)
		}
		cfg.ExpectIPs = append(cfg.ExpectIPs, ip)
	}
	if len(refs) > 0 {
		cfg.References = refs
	}
	trs, err := parseTransports(*transport)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg.Transports = trs
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = stderr
	lf.DefaultLogLevel = logging.LogLevelWarn
	if verbose {
		lf.DefaultLogLevel = logging.LogLevelDebug
	}
	cfg.LoggerFactory = lf

	kts, err := kf.readServices(ctx, services)
	if err != nil {
		var fe flagError
		if errors.As(err, &fe) {
			return usageErr("%v", err)
		}
		fmt.Fprintf(stderr, "stuncheck: %v\n", err)

		return exitError
	}
	for _, kt := range kts {
		cfg.Targets = append(cfg.Targets, kt.targets...)
	}
	if len(cfg.Targets) == 0 { // a Service with nothing to probe: its findings say why
		rep := &check.Report{Verdict: check.Inconclusive}
		checkHealth(ctx, kts, *timeout)()
		addFindings(rep, kts)
		if err := writeReport(stdout, rep, output, color); err != nil {
			fmt.Fprintf(stderr, "stuncheck: write output: %v\n", err)
		}

		return exitError
	}
	checker, err := check.New(cfg)
	if err != nil {
		return usageErr("%s", configErrorMessage(err))
	}
	// kube-proxy's health checks go out while the probes run.
	waitHealth := checkHealth(ctx, kts, *timeout)
	// Everything runs concurrently; bound the whole run generously.
	ctx, cancel := context.WithTimeout(ctx, 4**timeout+10*time.Second)
	defer cancel()
	rep, err := checker.Run(ctx)
	waitHealth()
	if err != nil {
		if errors.Is(err, check.ErrResolve) { // the name is part of the command line
			fmt.Fprintf(stderr, "stuncheck: %v\n", err)

			return exitUsage
		}
		fmt.Fprintf(stderr, "stuncheck: %v\n", err)

		return exitError
	}
	addFindings(rep, kts)
	if err = writeReport(stdout, rep, output, color); err != nil {
		fmt.Fprintf(stderr, "stuncheck: write output: %v\n", err)

		return exitError
	}

	return exitCode(rep.Verdict)
}

// turnConfig checks the TURN flags against the targets and builds the
// TURN part of the configuration. A flag given on the command line wins
// over the environment variable of the other credential kind.
func turnConfig(targets []check.Target, set map[string]bool, user, password, secret, caFile, serverName string) (check.TURNConfig, error) {
	tc := check.TURNConfig{Username: user, ServerName: serverName}
	if !slices.ContainsFunc(targets, check.Target.IsTURN) {
		for _, f := range []string{"turn-user", "turn-password", "turn-secret", "ca-file", "tls-server-name"} {
			if set[f] {
				return tc, fmt.Errorf("--%s is for turn: and turns: targets, and none is given", f)
			}
		}

		return tc, nil
	}
	switch {
	case set["turn-password"] && set["turn-secret"]:
		return tc, errors.New("--turn-password and --turn-secret: give one (long-term credentials or the REST shared secret)")
	case set["turn-secret"]:
		password = ""
	case set["turn-password"]:
		secret = ""
	case password != "" && secret != "":
		return tc, errors.New("both STUNCHECK_TURN_PASSWORD and STUNCHECK_TURN_SECRET are set: unset one, or choose with --turn-password or --turn-secret")
	}
	switch {
	case secret != "":
		tc.Secret = secret
	case user == "" && password == "":
		return tc, errors.New("a turn: or turns: target needs --turn-user and --turn-password (or STUNCHECK_TURN_PASSWORD), or --turn-secret (or STUNCHECK_TURN_SECRET)")
	case user == "":
		return tc, errors.New("--turn-password needs --turn-user")
	case password == "":
		return tc, errors.New("--turn-user needs --turn-password (or STUNCHECK_TURN_PASSWORD), or --turn-secret")
	default:
		tc.Password = password
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return tc, fmt.Errorf("--ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return tc, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
		}
	}

	return tc, nil
}

// exitCode is stuncheck's exit code for the overall verdict.
func exitCode(v check.Verdict) int {
	switch v {
	case check.Preserved:
		return exitPreserved
	case check.Rewritten, check.Failed:
		return exitRewritten
	default:
		return exitError
	}
}

// A flagError is a mistake in the command line or in what it names (a
// kubeconfig, a context, a Service): stuncheck prints it with a pointer
// to --help and exits 2.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// flagErrorf formats a flagError.
func flagErrorf(format string, a ...any) error { return flagError{fmt.Errorf(format, a...)} }

// configErrorMessage words an error of check.New for the command line:
// an input that came from a flag is named by the flag.
func configErrorMessage(err error) string {
	var ie *check.InputError
	if errors.Is(err, check.ErrBadExpectIP) && errors.As(err, &ie) {
		return fmt.Sprintf("--expect-ip %s is not a unicast address", ie.Input)
	}

	return err.Error()
}

// parseTransports parses --transport: "udp", "tcp" or "udp,tcp" (any
// order, no repeats).
func parseTransports(s string) ([]check.Transport, error) {
	var out []check.Transport
	seen := map[check.Transport]bool{}
	for _, part := range strings.Split(s, ",") {
		tr := check.Transport(strings.ToLower(strings.TrimSpace(part)))
		if tr != check.UDP && tr != check.TCP {
			return nil, fmt.Errorf("--transport %q: want udp, tcp or udp,tcp", part)
		}
		if seen[tr] {
			return nil, fmt.Errorf("--transport %q given twice", part)
		}
		seen[tr] = true
		out = append(out, tr)
	}

	return out, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()

	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
