package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/load"
	"github.com/stund/stund/pkg/check"
)

const loadUsage = `Usage: stuncheck load [flags] TARGET

Capacity-tests a STUN server, or the load balancer in front of it, with
Binding requests, and checks every answer: its transaction ID must be one
in flight, it must be a success response, and its XOR-MAPPED-ADDRESS must
be right (see --mapped). Reports responses per second, loss and round-trip
times (p50, p99, p99.9).

Ways to load:
  closed loop (default)  every connection keeps --window requests in flight
                         and sends a new one per answer: finds the rate at
                         which the server saturates
  open loop (--rate R)   R requests per second in total, whatever the
                         server does: shows latency and loss at that load
  spinning (--spin)      a closed loop over UDP where one thread polls all
                         the sockets and never sleeps, for servers that answer
                         one datagram at a time (coturn): otherwise the
                         generator wakes up per answer and becomes the limit

TARGET is host, host:port, [ipv6]:port or stun:host[:port] (port 3478 by
default). A host name is resolved and its first address used.

Flags:
  --connections N        UDP sockets (source ports) or TCP connections (default %d)
  --window W             requests in flight per connection, closed loop (default %d)
  --rate R               open loop: R requests/s in total over all connections
  --duration D           how long to send (default %s)
  --transport T          udp or tcp (default udp)
  --timeout D            a request unanswered this long is lost; also the wait
                         for late answers after sending stops (default %s)
  --max-loss P           loss allowed before exit code 1: a fraction (0.01) or
                         a percentage (1%%) (default 1%%)
  --mapped CHECK         what XOR-MAPPED-ADDRESS must be: local (the socket's own
                         address: no NAT on the path), stable (the same for every
                         answer on a socket: what a NAT or load balancer must
                         keep), off (only present), auto (local for a loopback
                         TARGET, stable otherwise) (default auto)
  --request SHAPE        what every request is: bare (a Binding request with no
                         attributes, 20 bytes: what Chromium sends to gather
                         server-reflexive candidates) or fingerprint (with a
                         FINGERPRINT, 28 bytes, right for each transaction ID,
                         as clients that add it send) (default bare)
  --batch N              datagrams per recvmmsg/sendmmsg call (default %d)
  --spin                 poll every UDP socket from one thread that never
                         sleeps (closed loop, UDP, Linux only). It uses a whole
                         core however light the load: give the generator its
                         own core; the figure is the server's, not the
                         generator's wake-ups
  --gso=false            send one datagram per request instead of a batch per
                         UDP GSO write (Linux UDP_SEGMENT); the server gets the
                         same separate datagrams either way, GSO only makes the
                         generator cheaper
  -o, --output FORMAT    text or json (default text)
  -h, --help             show this help

Servers that limit answers per source address look lossy under load:
stund does by default (--rate-limit, 20/s after a burst of 100), so exempt
the generator's address when testing capacity (stund --rate-limit-exempt
IP/32, or --rate-limit 0 on a test instance).

A progress line is shown on stderr when stderr is a terminal. For an honest
server figure, give the generator its own core and check the "client cpu"
line: near 100%% means the generator, not the server, was the limit (with
--spin it is always near 100%%).

Exit codes:
  0  every response valid and loss within --max-loss
  1  invalid responses, or loss above --max-loss
  2  usage error (bad flag, bad or unresolvable target)
  3  no response at all, or the load could not start

Examples:
  stuncheck load 127.0.0.1:3478
  stuncheck load --connections 8 --window 64 --duration 30s stun:stun.example.com
  stuncheck load --rate 50000 --duration 1m --max-loss 0.1%% -o json 198.51.100.7
  stuncheck load --transport tcp --connections 100 --window 4 [2001:db8::7]:3478
`

// Exit codes of stuncheck load besides exitUsage and exitError; its
// --help lists them.
const (
	exitLoadOK     = 0 // every response valid, loss within --max-loss
	exitLoadFailed = 1 // invalid responses, or loss above --max-loss
)

// runLoad is the load subcommand; it returns the exit code.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stuncheck load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conns := fs.Int("connections", load.DefaultConnections, "")
	window := fs.Int("window", load.DefaultWindow, "")
	rate := fs.Float64("rate", 0, "")
	duration := fs.Duration("duration", load.DefaultDuration, "")
	transport := fs.String("transport", "udp", "")
	timeout := fs.Duration("timeout", load.DefaultTimeout, "")
	maxLossText := fs.String("max-loss", "1%", "")
	mapped := fs.String("mapped", "auto", "")
	request := fs.String("request", "bare", "")
	batch := fs.Int("batch", load.DefaultBatch, "")
	gso := fs.Bool("gso", true, "")
	spin := fs.Bool("spin", false, "")
	var output string
	fs.StringVar(&output, "o", "text", "")
	fs.StringVar(&output, "output", "text", "")

	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stuncheck load: "+format+" (see stuncheck load --help)\n", a...)

		return exitUsage
	}
	var targets []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, loadUsage, load.DefaultConnections, load.DefaultWindow,
					load.DefaultDuration, load.DefaultTimeout, load.DefaultBatch)

				return 0
			}

			return usageErr("%v", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		targets = append(targets, rest[0])
		rest = rest[1:]
	}
	switch {
	case len(targets) == 0:
		return usageErr("no TARGET given")
	case len(targets) > 1:
		return usageErr("one TARGET only, got %d", len(targets))
	case output != "text" && output != "json":
		return usageErr("-o %q: want text or json", output)
	case *transport != "udp" && *transport != "tcp":
		return usageErr("--transport %q: want udp or tcp", *transport)
	}
	windowSet := false
	fs.Visit(func(f *flag.Flag) { windowSet = windowSet || f.Name == "window" })
	if *rate != 0 && windowSet {
		return usageErr("--window (closed loop) and --rate (open loop) exclude each other")
	}
	switch {
	case *spin && *transport != "udp":
		return usageErr("--spin polls UDP sockets: it does not work with --transport %s", *transport)
	case *spin && *rate != 0:
		return usageErr("--spin is a closed loop: it excludes --rate (open loop)")
	}
	maxLoss, err := parseRatio(*maxLossText)
	if err != nil {
		return usageErr("--max-loss %q: %v", *maxLossText, err)
	}
	mc, err := load.ParseMappedCheck(*mapped)
	if err != nil {
		return usageErr("--mapped %q: want auto, local, stable or off", *mapped)
	}
	shape, err := load.ParseRequestShape(*request)
	if err != nil {
		return usageErr("--request %q: want bare or fingerprint", *request)
	}
	addr, err := resolveTarget(ctx, targets[0])
	if err != nil {
		return usageErr("%v", err)
	}

	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = stderr
	lf.DefaultLogLevel = logging.LogLevelError
	opts := []load.Option{
		load.WithNetwork(*transport), load.WithConnections(*conns), load.WithWindow(*window),
		load.WithRate(*rate), load.WithDuration(*duration), load.WithTimeout(*timeout),
		load.WithBatch(*batch), load.WithGSO(*gso), load.WithMappedCheck(mc), load.WithRequest(shape), load.WithSpin(*spin),
		load.WithLoggerFactory(lf),
	}
	live := false
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		live = true
		opts = append(opts, load.WithProgress(500*time.Millisecond, func(p load.Progress) {
			state := ""
			if p.Draining {
				state = "  (waiting for the last answers)"
			}
			fmt.Fprintf(stderr, "\r\033[K%5.1fs  %9.0f responses/s  sent %d  lost %d  invalid %d%s",
				p.Elapsed.Seconds(), p.Rate, p.Sent, p.Lost, p.Invalid, state)
		}))
	}
	res, err := load.Run(ctx, addr, opts...)
	if live {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		if errors.Is(err, load.ErrConfig) {
			return usageErr("%v", err)
		}
		fmt.Fprintf(stderr, "stuncheck load: %v\n", err)

		return exitError
	}
	if output == "json" {
		err = res.WriteJSON(stdout, maxLoss)
	} else {
		err = res.WriteText(stdout, maxLoss)
	}
	if err != nil {
		fmt.Fprintf(stderr, "stuncheck load: write output: %v\n", err)

		return exitError
	}
	switch res.Verdict(maxLoss) {
	case load.VerdictOK:
		return exitLoadOK
	case load.VerdictNoResponse:
		return exitError
	default:
		return exitLoadFailed
	}
}

// parseRatio reads "1%" as 0.01 and "0.01" as 0.01.
func parseRatio(s string) (float64, error) {
	scale := 1.0
	if v, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = v, 0.01
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*scale > 1 {
		return 0, errors.New("want a fraction from 0 to 1 or a percentage such as 1%")
	}

	return f * scale, nil
}

// resolveTarget turns TARGET into one address.
func resolveTarget(ctx context.Context, s string) (netip.AddrPort, error) {
	t, err := check.ParseTarget(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if ip, ok := t.IP(); ok {
		return netip.AddrPortFrom(ip, t.Port), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.Host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("target %q: cannot resolve %s: %v", s, t.Host, err)
	}

	return netip.AddrPortFrom(ips[0].Unmap(), t.Port), nil
}
