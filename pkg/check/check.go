package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/client"
)

// DefaultTimeout bounds each probe, UDP retransmissions included.
const DefaultTimeout = 5 * time.Second

// DefaultReferences are public STUN servers used to learn the client's
// public IP when Config.ExpectIPs does not give it.
var DefaultReferences = []string{
	"stun.l.google.com:19302",
	"stun1.l.google.com:19302",
	"stun.cloudflare.com:3478",
}

// Resolver looks up host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config says what to check.
type Config struct {
	// Targets are the STUN servers behind the load balancer.
	Targets []Target
	// ExpectIPs are the client's public IPs, at most one per family.
	ExpectIPs []netip.Addr
	// References are STUN servers outside the load balancer (host[:port]
	// or stun: URIs) asked over UDP for the public IP of each family that
	// ExpectIPs does not cover. Nil means DefaultReferences; an empty
	// non-nil slice means none.
	References []string
	// Transports to probe; empty means UDP and TCP.
	Transports []Transport
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration
	// NATBehavior runs the RFC 5780 mapping and filtering tests over UDP
	// against servers that send OTHER-ADDRESS.
	NATBehavior bool
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// LoggerFactory creates the checker's loggers; nil means pion's default.
	LoggerFactory logging.LoggerFactory
	// TURN holds the credentials and TLS settings of turn: and turns:
	// targets; they need Username and Password, or Secret.
	TURN TURNConfig

	// turnRTO is the TURN client's first UDP retransmission timeout; zero
	// means its default.
	turnRTO time.Duration
	// clientOptions are passed to the STUN client after the timeout;
	// tests use them to shorten the retransmission timeout.
	clientOptions []client.Option
}

// Checker runs a check. Create it with New.
type Checker struct {
	cfg    Config
	expect map[Family]netip.Addr
	client *client.Client
	log    logging.LeveledLogger
}

// New validates cfg and fills its defaults. An error wraps one of the
// sentinels of this package (ErrNoTarget, ErrBadTimeout, ErrBadTransport,
// ErrBadReference, ErrBadExpectIP, ErrTwoExpectIPs, ErrTURNCredentials);
// all but ErrNoTarget and ErrTURNCredentials come as an *InputError naming
// the refused value.
func New(cfg Config) (*Checker, error) {
	if len(cfg.Targets) == 0 {
		return nil, ErrNoTarget
	}
	if slices.ContainsFunc(cfg.Targets, Target.IsTURN) {
		switch t := cfg.TURN; {
		case t.Secret != "" && t.Password != "":
			return nil, fmt.Errorf("%w: give a password or a shared secret, not both", ErrTURNCredentials)
		case t.Secret == "" && (t.Username == "" || t.Password == ""):
			return nil, fmt.Errorf("%w: a TURN target needs a username and password, or a shared secret", ErrTURNCredentials)
		}
	}
	if cfg.Timeout < 0 {
		return nil, &InputError{Err: ErrBadTimeout, Input: cfg.Timeout.String(), msg: fmt.Sprintf("timeout %s is negative", cfg.Timeout)}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []Transport{UDP, TCP}
	}
	for _, tr := range cfg.Transports {
		if tr != UDP && tr != TCP {
			return nil, &InputError{Err: ErrBadTransport, Input: string(tr), msg: fmt.Sprintf("transport %q: want udp or tcp", tr)}
		}
	}
	if cfg.References == nil {
		cfg.References = DefaultReferences
	}
	for _, r := range cfg.References {
		t, err := ParseTarget(r)
		if err != nil {
			return nil, &InputError{Err: ErrBadReference, Input: r, msg: "reference: " + err.Error()}
		}
		if t.IsTURN() {
			return nil, &InputError{Err: ErrBadReference, Input: r, msg: fmt.Sprintf("reference %q: a reference is a STUN server (host[:port] or stun:host[:port])", r)}
		}
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	expect := map[Family]netip.Addr{}
	for _, ip := range cfg.ExpectIPs {
		ip = ip.Unmap()
		if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			return nil, &InputError{Err: ErrBadExpectIP, Input: ip.String(), msg: fmt.Sprintf("expected IP %s is not a unicast address", ip)}
		}
		f := familyOf(ip)
		if prev, ok := expect[f]; ok {
			return nil, &InputError{Err: ErrTwoExpectIPs, Input: ip.String(),
				msg: fmt.Sprintf("two %s expected IPs (%s and %s): give at most one per family", familyName(f), prev, ip)}
		}
		expect[f] = ip
	}
	opts := append([]client.Option{
		client.WithTimeout(cfg.Timeout),
		client.WithLoggerFactory(cfg.LoggerFactory),
	}, cfg.clientOptions...)

	return &Checker{
		cfg:    cfg,
		expect: expect,
		client: client.New(opts...),
		log:    cfg.LoggerFactory.NewLogger("check"),
	}, nil
}

// Report is the result of a check. Its JSON form is stuncheck's -o json.
type Report struct {
	// Verdict is the worst probe verdict.
	Verdict Verdict
	// PublicIPs says, per probed family, what the client's public IP is
	// and where that came from.
	PublicIPs []PublicIP
	// Probes has one entry per target address and transport.
	Probes []Probe
	// Findings are what a diagnosis of the path (stuncheck's Kubernetes
	// diagnosis, for a Service) found, most severe first. Nil when no
	// diagnosis ran; empty when one ran and found nothing.
	Findings []Finding
	// HealthChecks are the nodes' answers to the load balancer's health
	// check of a Service (stuncheck's Kubernetes diagnosis, when the
	// Service has one); nil when none was sent.
	HealthChecks []HealthCheck
}

// Source says where a public IP came from.
type Source string

// Public IP sources.
const (
	SourceExpectIP  Source = "expect-ip"
	SourceReference Source = "reference"
)

// PublicIP is the client's public IP for one family.
type PublicIP struct {
	Family Family
	// IP is invalid when it is unknown (no reference answered, or they
	// disagreed).
	IP     netip.Addr
	Source Source
	// References are the answers the IP was learned from (SourceReference).
	References []ReferenceAnswer
	// Detail says how the IP was decided, or why it is unknown.
	Detail string
}

// ReferenceAnswer is one reference server's view of the client.
type ReferenceAnswer struct {
	// Server is the reference as configured.
	Server string
	// Address is where the request went; invalid if it did not resolve.
	Address netip.AddrPort
	// Mapped is what the reference saw; invalid if it did not answer.
	Mapped netip.AddrPort
	// Error says why there is no answer.
	Error string
}

// Probe is one Binding request to one target address over one transport,
// judged.
type Probe struct {
	// Target is the target as the user wrote it.
	Target    string
	Address   netip.AddrPort
	Transport Transport
	Family    Family
	// Local is the client's socket address.
	Local netip.AddrPort
	// Mapped is what the server saw; invalid without an answer.
	Mapped netip.AddrPort
	// PublicIP is what Mapped was compared with; invalid if unknown.
	PublicIP netip.Addr
	Judgement
	// RTT is zero without an answer.
	RTT            time.Duration
	ResponseOrigin netip.AddrPort
	OtherAddress   netip.AddrPort
	Software       string
	// NAT holds the RFC 5780 results when they were asked for.
	NAT *NATBehavior
	// TURN holds what a TURN probe (a turn: or turns: target) found
	// besides the mapped address; nil for STUN probes. For TURN probes
	// Mapped is the XOR-MAPPED-ADDRESS of the Allocate response and RTT
	// the authenticated Allocate's round trip.
	TURN *TURNResult

	// serverName is the target's host, the TLS server name of turns:.
	serverName string
}

type endpoint struct {
	target Target
	addr   netip.AddrPort
}

// Run probes every target address over every transport, learns the
// public IPs it needs, and judges each probe. The error is non-nil only
// when the check could not start: a target that does not resolve wraps
// ErrResolve. Unanswered probes are inconclusive, not errors.
func (c *Checker) Run(ctx context.Context) (*Report, error) {
	eps, err := c.resolveTargets(ctx)
	if err != nil {
		return nil, err
	}
	var families []Family
	for _, f := range []Family{IPv4, IPv6} {
		for _, ep := range eps {
			if familyOf(ep.addr.Addr()) == f {
				families = append(families, f)

				break
			}
		}
	}

	rep := &Report{Probes: make([]Probe, 0, len(eps)*len(c.cfg.Transports))}
	for _, ep := range eps {
		for _, tr := range c.cfg.Transports {
			if ep.target.Scheme == SchemeTURNS {
				if tr != TCP {
					continue
				}
				tr = TLS // TLS runs over TCP
			}
			if len(ep.target.Transports) > 0 && !slices.Contains(ep.target.Transports, tr) {
				continue
			}
			p := Probe{Target: ep.target.Input, Address: ep.addr, Transport: tr, Family: familyOf(ep.addr.Addr()), serverName: ep.target.Host}
			if ep.target.IsTURN() {
				p.TURN = &TURNResult{}
			}
			rep.Probes = append(rep.Probes, p)
		}
	}

	var wg sync.WaitGroup
	publics := make([]PublicIP, len(families))
	for i, f := range families {
		if ip, ok := c.expect[f]; ok {
			publics[i] = PublicIP{Family: f, IP: ip, Source: SourceExpectIP, Detail: "given with --expect-ip"}

			continue
		}
		wg.Go(func() { publics[i] = c.discover(ctx, f) })
	}
	for i := range rep.Probes {
		wg.Go(func() { c.probe(ctx, &rep.Probes[i]) })
	}
	wg.Wait()
	rep.PublicIPs = publics

	byFamily := map[Family]netip.Addr{}
	for f, ip := range c.expect {
		byFamily[f] = ip
	}
	for _, p := range publics {
		if p.IP.IsValid() {
			byFamily[p.Family] = p.IP
		}
	}
	verdicts := make([]Verdict, 0, len(rep.Probes))
	for i := range rep.Probes {
		p := &rep.Probes[i]
		if p.Mapped.IsValid() {
			p.PublicIP = byFamily[familyOf(p.Mapped.Addr())]
			p.Judgement = judge(observation{Mapped: p.Mapped, Local: p.Local, Target: p.Address, Public: p.PublicIP})
			if p.TURN != nil {
				p.Judgement = judgeTURN(p.Judgement, p.TURN)
			}
		} else {
			p.PublicIP = byFamily[p.Family]
		}
		verdicts = append(verdicts, p.Verdict)
	}
	explainSplit(rep.Probes)
	rep.Verdict = worst(verdicts...)

	return rep, nil
}

// resolveTargets turns targets into addresses: literals as they are, host
// names into the first address of each family.
func (c *Checker) resolveTargets(ctx context.Context) ([]endpoint, error) {
	var eps []endpoint
	for _, t := range c.cfg.Targets {
		addrs, err := c.resolve(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w (check the name)", ErrResolve, t.Host, err)
		}
		for _, a := range addrs {
			eps = append(eps, endpoint{target: t, addr: a})
		}
	}

	return eps, nil
}

// resolve returns one address per family for t, IPv4 first.
func (c *Checker) resolve(ctx context.Context, t Target) ([]netip.AddrPort, error) {
	if ip, ok := t.IP(); ok {
		return []netip.AddrPort{netip.AddrPortFrom(ip, t.Port)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ips, err := c.cfg.Resolver.LookupNetIP(ctx, "ip", t.Host)
	if err != nil {
		return nil, err
	}
	var v4, v6 netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		}
		if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	var out []netip.AddrPort
	for _, ip := range []netip.Addr{v4, v6} {
		if ip.IsValid() {
			out = append(out, netip.AddrPortFrom(ip, t.Port))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no addresses")
	}

	return out, nil
}

// probe sends the Binding request for p and fills in what came back; the
// verdict for an answered probe is decided later, once public IPs are known.
func (c *Checker) probe(ctx context.Context, p *Probe) {
	if p.TURN != nil {
		c.turnProbe(ctx, p, p.serverName)

		return
	}
	var (
		res *client.Response
		err error
	)
	if p.Transport == UDP && c.cfg.NATBehavior {
		res, p.NAT, err = c.natProbe(ctx, p.Address)
	} else {
		res, err = c.client.Binding(ctx, string(p.Transport), p.Address)
	}
	if err != nil {
		p.Judgement = failure(err, p.Address, p.Transport, c.cfg.Timeout)
		c.log.Debugf("probe %s %s: %v", p.Transport, p.Address, err)

		return
	}
	p.Local, p.Mapped, p.RTT = res.Local, res.Mapped, res.RTT
	p.ResponseOrigin, p.OtherAddress, p.Software = res.ResponseOrigin, res.OtherAddress, res.Software
}

// failure explains a probe that got no usable answer.
func failure(err error, addr netip.AddrPort, tr Transport, timeout time.Duration) Judgement {
	j := Judgement{Verdict: Inconclusive}
	var er *client.ErrorResponse
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		j.Reason = ReasonRefused
		j.Detail = fmt.Sprintf("Nothing accepts %s on %s: the connection was refused.", tr, addr)
		j.Hint = "Check the address and port, that the Service exposes this protocol, and that the server listens on it."
	case errors.As(err, &er):
		j.Reason = ReasonErrorResponse
		j.Detail = fmt.Sprintf("The server at %s answered with an error: %s.", addr, er)
		j.Hint = "The server refused a plain Binding request; check that it is a STUN server that does not require authentication."
	case errors.Is(err, client.ErrNoResponse):
		j.Reason = ReasonNoResponse
		j.Detail = fmt.Sprintf("No answer from %s over %s within %s.", addr, tr, timeout)
		j.Hint = "Check the address and port, firewalls and security groups, and that the load balancer forwards " + string(tr) + "; " +
			"a load balancer whose health check fails also drops traffic."
	case errors.Is(err, client.ErrMalformed), errors.Is(err, client.ErrFingerprint),
		errors.Is(err, client.ErrNoMappedAddress), errors.Is(err, client.ErrUnexpectedType):
		j.Reason = ReasonInvalidResponse
		j.Detail = fmt.Sprintf("The answer from %s over %s was not a valid STUN Binding response: %v.", addr, tr, unwrapAll(err))
		j.Hint = "Check that this port is a STUN server (RFC 5389/8489), not another service."
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EAFNOSUPPORT):
		j.Reason = ReasonUnsupportedFamily
		j.Detail = fmt.Sprintf("This host cannot reach %s: %v.", addr, unwrapAll(err))
		j.Hint = "Run the check from a host with " + familyName(familyOf(addr.Addr())) + " connectivity."
	default:
		j.Reason = ReasonNetworkError
		j.Detail = fmt.Sprintf("Probing %s over %s failed: %v.", addr, tr, err)
	}

	return j
}

func unwrapAll(err error) error {
	for {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return ne.Err
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		if _, ok := err.(interface{ Unwrap() []error }); ok {
			return err
		}
		err = next
	}
}

// explainSplit adds to the hint of probes where UDP and TCP to the same
// address disagree: that pattern points at specific causes.
func explainSplit(probes []Probe) {
	for i := range probes {
		for j := range probes {
			a, b := &probes[i], &probes[j]
			if a.Address != b.Address || a.Transport == b.Transport || a.Verdict != Rewritten || b.Verdict != Preserved {
				continue
			}
			if a.Transport == UDP {
				a.Hint += " TCP to the same address is preserved while UDP is rewritten: typical of Cilium's hybrid DSR mode " +
					"(DSR for TCP, SNAT for UDP) or a load balancer that proxies UDP only; use Cilium's dsr mode or externalTrafficPolicy: Local."
			} else {
				a.Hint += " UDP to the same address is preserved while TCP is rewritten: typical of a load balancer that passes UDP through but proxies TCP " +
					"(e.g. AWS NLB ip targets, where TCP client IP preservation is off by default); enable client IP preservation or PROXY protocol for TCP."
			}
		}
	}
}
