// Package server is a STUN Binding server (RFC 8489) over UDP and TCP, for
// IPv4 and IPv6. It answers every well-formed Binding request with the
// source address it saw, silently discards what the receive rules of
// RFC 8489 §6.3 say to discard, and counts all of it in Prometheus metrics.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/wire"
)

// Defaults used by New for zero Config fields.
const (
	DefaultListen         = ":3478"
	DefaultMaxMessageSize = 2048
	DefaultTCPIdleTimeout = 60 * time.Second
	// MaxSoftwareLength is the longest SOFTWARE value accepted, in bytes
	// (RFC 8489 §14.14 asks for fewer than 128 characters).
	MaxSoftwareLength = 127

	tcpWriteTimeout = 10 * time.Second
	// defaultCloseGrace bounds Close: a TCP connection still open this
	// long after the listeners closed (writing to a client that does not
	// read, say) is closed without finishing.
	defaultCloseGrace = 500 * time.Millisecond
	maxUDPSockets     = 1024
	udpBufferSize     = 2048
)

// Config configures a Server. The zero value listens on DefaultListen and
// sends no SOFTWARE attribute.
type Config struct {
	// Listen lists the addresses to serve, host:port each; UDP and TCP are
	// bound on each, on the same port. Port 0 picks a free port that is
	// free for both. Empty means DefaultListen.
	Listen []string
	// Software is the SOFTWARE attribute of every response; empty sends
	// none.
	Software string
	// ResponseOrigin lists the addresses advertised as RESPONSE-ORIGIN
	// (RFC 5780): where clients reach this server, at most one IPv4 and
	// one IPv6 address. Each goes only to clients of its family; a family
	// without one gets none.
	ResponseOrigin []netip.AddrPort
	// RFC3489 answers classic RFC 3489 Binding requests (no magic cookie)
	// with MAPPED-ADDRESS. Off by default: such servers are abused for
	// reflection.
	RFC3489 bool
	// MaxMessageSize bounds a message read from TCP; a longer one closes
	// the connection. Zero means DefaultMaxMessageSize.
	MaxMessageSize int
	// TCPIdleTimeout closes a TCP connection that completes no message
	// in this time. Zero means DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration
	// UDPSockets is how many UDP sockets, each with its own worker, serve
	// each listen address, sharing the port with SO_REUSEPORT so the
	// kernel spreads clients across them. Zero means GOMAXPROCS.
	UDPSockets int
	// ProxyProtocol takes the client address from PROXY protocol headers
	// (v1 and v2 on TCP, v2 on UDP) sent by ProxyTrusted sources.
	ProxyProtocol bool
	// ProxyTrusted lists the sources whose PROXY headers are believed
	// (the load balancer's addresses); required with ProxyProtocol. A
	// header from anywhere else is refused and counted.
	ProxyTrusted []netip.Prefix
	// ProxyOptional lets trusted sources also send without a header,
	// answered about their own address. Off: such traffic is refused, so
	// a misconfigured proxy shows at once instead of as wrong answers.
	ProxyOptional bool
	// MaxTCPConns caps the open TCP connections; more are closed at once.
	// Zero means no cap.
	MaxTCPConns int
	// MaxTCPConnsPerSource caps the open TCP connections from one IP
	// (RateLimit.Exempt sources are not capped). Zero means no cap.
	MaxTCPConnsPerSource int
	// RateLimit limits answers per source IP and in total; the zero value
	// limits nothing. stund's command line sets DefaultRateLimit and
	// DefaultRateLimitBurst per source.
	RateLimit RateLimit
	// Classifier classifies request sources for metrics; nil means a
	// StaticClassifier with no internal prefixes.
	Classifier Classifier
	// Metrics receives the counters; nil creates unregistered ones.
	Metrics *Metrics
	// LoggerFactory creates the server's logger; nil means pion's default.
	LoggerFactory logging.LoggerFactory
}

// Server serves STUN Binding requests. Create it with New, bind with
// Start, stop with Close.
type Server struct {
	cfg        Config
	h          handler
	log        logging.LeveledLogger
	debug      bool
	metrics    *Metrics
	classifier Classifier
	proxy      proxyPolicy
	limit      *limiter
	// closeGrace is defaultCloseGrace; tests stretch it to see that
	// connections end on their own.
	closeGrace time.Duration

	// stopping is set by Close before it sets every connection's read
	// deadline in the past, so that a connection setting its own next
	// deadline cannot undo that one (see armRead).
	stopping atomic.Bool

	mu      sync.Mutex
	started bool
	closed  bool
	udp     []*udpSocket
	// serving: the UDP workers run, and each closes its socket once
	// woken; before that, closing closes the sockets.
	serving bool
	tcp     []*net.TCPListener
	conns   map[*net.TCPConn]struct{}
	perSrc  map[netip.Addr]int
	addrs   []netip.AddrPort
	wg      sync.WaitGroup
}

// New validates cfg, fills its defaults and returns a Server that is not
// yet listening. A Config it refuses is a *ConfigError naming the field
// and wrapping one of the sentinels in errors.go.
func New(cfg Config) (*Server, error) {
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{DefaultListen}
	}
	for _, a := range cfg.Listen {
		if _, _, err := splitListen(a); err != nil {
			return nil, err
		}
	}
	if len(cfg.Software) > MaxSoftwareLength {
		return nil, configError("Software", cfg.Software, ErrSoftwareTooLong,
			"%v: %d bytes, at most %d", ErrSoftwareTooLong, len(cfg.Software), MaxSoftwareLength)
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxMessageSize < headerSize || cfg.MaxMessageSize > 65535+headerSize {
		return nil, configError("MaxMessageSize", cfg.MaxMessageSize, ErrBadMaxMessageSize, "%v: %d", ErrBadMaxMessageSize, cfg.MaxMessageSize)
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if cfg.TCPIdleTimeout < 0 {
		return nil, configError("TCPIdleTimeout", cfg.TCPIdleTimeout, ErrBadTimeout, "%v: %s", ErrBadTimeout, cfg.TCPIdleTimeout)
	}
	if cfg.UDPSockets == 0 {
		cfg.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if cfg.UDPSockets < 0 || cfg.UDPSockets > maxUDPSockets {
		return nil, configError("UDPSockets", cfg.UDPSockets, ErrBadUDPSockets, "%v: %d, want 1 to %d", ErrBadUDPSockets, cfg.UDPSockets, maxUDPSockets)
	}
	if err := checkProxy(cfg); err != nil {
		return nil, err
	}
	for _, list := range []struct {
		field    string
		prefixes []netip.Prefix
	}{{"ProxyTrusted", cfg.ProxyTrusted}, {"RateLimit.Exempt", cfg.RateLimit.Exempt}, {"Classifier.Internal", staticInternal(cfg.Classifier)}} {
		if err := CheckPrefixes(list.field, list.prefixes); err != nil {
			return nil, err
		}
	}
	origin4, origin6, err := splitOrigins(cfg.ResponseOrigin)
	if err != nil {
		return nil, err
	}
	if err := checkLimits(&cfg); err != nil {
		return nil, err
	}
	if cfg.Classifier == nil {
		cfg.Classifier = StaticClassifier{}
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(nil, "")
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	log := cfg.LoggerFactory.NewLogger("stund")
	s := &Server{
		cfg: cfg,
		h: handler{
			software: []byte(cfg.Software),
			origin4:  origin4,
			origin6:  origin6,
			rfc3489:  cfg.RFC3489,
		},
		log:        log,
		debug:      debugEnabled(log),
		metrics:    cfg.Metrics,
		classifier: cfg.Classifier,
		proxy:      proxyPolicy{enabled: cfg.ProxyProtocol, trusted: cfg.ProxyTrusted, optional: cfg.ProxyOptional},
		limit:      newLimiter(cfg.RateLimit),
		closeGrace: defaultCloseGrace,
		conns:      make(map[*net.TCPConn]struct{}),
		perSrc:     make(map[netip.Addr]int),
	}
	if len(s.h.software) == 0 {
		s.h.software = nil
	}

	return s, nil
}

// checkProxy refuses PROXY protocol without a trusted source, and
// trusted sources or optional headers without PROXY protocol.
func checkProxy(cfg Config) error {
	switch {
	case cfg.ProxyProtocol && len(cfg.ProxyTrusted) == 0:
		return configError("ProxyTrusted", cfg.ProxyTrusted, ErrProxyNoTrusted, "%v", ErrProxyNoTrusted)
	case !cfg.ProxyProtocol && len(cfg.ProxyTrusted) > 0:
		return configError("ProxyTrusted", cfg.ProxyTrusted[0], ErrProxyUnused, "%v", ErrProxyUnused)
	case !cfg.ProxyProtocol && cfg.ProxyOptional:
		return configError("ProxyOptional", true, ErrProxyUnused, "%v", ErrProxyUnused)
	}

	return nil
}

// CheckPrefixes refuses an IPv4-mapped IPv6 prefix in the list field
// (ErrMappedPrefix): sources are compared as IPv4, so it would never
// match, and a trust, exemption or internal list that silently matches
// nothing is worse than an error.
func CheckPrefixes(field string, prefixes []netip.Prefix) error {
	for _, p := range prefixes {
		if p.Addr().Is4In6() {
			return configError(field, p, ErrMappedPrefix, "%s %s: %v", field, p, ErrMappedPrefix)
		}
	}

	return nil
}

// staticInternal returns the internal prefixes of c when it is a
// StaticClassifier, which New validates as part of its Config.
func staticInternal(c Classifier) []netip.Prefix {
	if s, ok := c.(StaticClassifier); ok {
		return s.Internal
	}

	return nil
}

// checkLimits refuses negative rates and TCP caps, a per-source rate with
// a burst under one answer, and an IPv6 prefix length out of range; it
// fills the default IPv6 prefix length.
func checkLimits(cfg *Config) error {
	for _, f := range []struct {
		field string
		value int
	}{{"MaxTCPConns", cfg.MaxTCPConns}, {"MaxTCPConnsPerSource", cfg.MaxTCPConnsPerSource}} {
		if f.value < 0 {
			return configError(f.field, f.value, ErrBadRateLimit, "%v: %s %d: TCP connection caps must not be negative", ErrBadRateLimit, f.field, f.value)
		}
	}
	rl := &cfg.RateLimit
	for _, f := range []struct {
		field string
		value float64
	}{{"RateLimit.PerSource", rl.PerSource}, {"RateLimit.Burst", rl.Burst}, {"RateLimit.Global", rl.Global}} {
		if f.value < 0 {
			return configError(f.field, f.value, ErrBadRateLimit, "%v: %s %g: rates and burst must not be negative", ErrBadRateLimit, f.field, f.value)
		}
	}
	if rl.PerSource > 0 && rl.Burst < 1 {
		return configError("RateLimit.Burst", rl.Burst, ErrBadRateLimit,
			"%v: RateLimit.Burst %g: want at least 1 with a per-source rate, or no source could be answered", ErrBadRateLimit, rl.Burst)
	}
	if rl.IPv6Prefix == 0 {
		rl.IPv6Prefix = DefaultIPv6Prefix
	}
	if p := rl.IPv6Prefix; p < MinIPv6Prefix || p > MaxIPv6Prefix {
		return configError("RateLimit.IPv6Prefix", p, ErrBadRateLimit, "%v: IPv6 prefix length %d, want %d to %d", ErrBadRateLimit, p, MinIPv6Prefix, MaxIPv6Prefix)
	}

	return nil
}

// splitOrigins sorts the RESPONSE-ORIGIN addresses by family, refusing
// two of one. An IPv4-mapped IPv6 address is sent as IPv4, so it counts
// as one.
func splitOrigins(origins []netip.AddrPort) (v4, v6 netip.AddrPort, err error) {
	for _, o := range origins {
		if !o.IsValid() || o.Addr().Unmap().IsUnspecified() {
			return v4, v6, configError("ResponseOrigin", o, ErrBadResponseOrigin, "%v: %s is not an address clients can reach", ErrBadResponseOrigin, o)
		}
		slot := &v6
		if o.Addr().Unmap().Is4() {
			slot = &v4
		}
		if slot.IsValid() {
			return v4, v6, configError("ResponseOrigin", []netip.AddrPort{*slot, o}, ErrTwoResponseOrigins,
				"%v: %s and %s are of one family; give at most one IPv4 and one IPv6 address", ErrBadResponseOrigin, *slot, o)
		}
		*slot = o
	}

	return v4, v6, nil
}

// debugEnabled asks a logger that can tell whether debug messages are
// written, so the packet path skips formatting them when they are not.
func debugEnabled(l logging.LeveledLogger) bool {
	if d, ok := l.(interface{ DebugEnabled() bool }); ok {
		return d.DebugEnabled()
	}

	return true
}

// splitListen checks a listen address and returns its host and port.
func splitListen(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, configError("Listen", addr, ErrBadAddress, "listen address %q: %v (want host:port, [v6]:port or :port)", addr, ErrBadAddress)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, configError("Listen", addr, ErrBadAddress, "listen address %q: %v: port must be a number from 0 to 65535", addr, ErrBadAddress)
	}

	return host, port, nil
}

// Start binds UDP and TCP on every configured address and serves them in
// the background. It fails, having closed what it opened, when any address
// cannot be bound.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	s.started = true
	for _, addr := range s.cfg.Listen {
		us, t, err := bindGroup(ctx, addr, s.cfg.UDPSockets)
		if err != nil {
			_ = s.closeLocked()

			return err
		}
		bound := us[0].LocalAddr().(*net.UDPAddr).AddrPort() //nolint:forcetypeassert // a UDPConn's address
		s.tcp = append(s.tcp, t)
		for i, u := range us {
			sock, err := openUDPSocket(u)
			if err != nil {
				for _, rest := range us[i+1:] {
					_ = rest.Close()
				}
				_ = s.closeLocked()

				return err
			}
			s.udp = append(s.udp, sock)
		}
		s.addrs = append(s.addrs, bound)
		if len(us) > 1 {
			s.log.Infof("listening udp %s (%d sockets)", bound, len(us))
		} else {
			s.log.Infof("listening udp %s", bound)
		}
		s.log.Infof("listening tcp %s", bound)
	}
	// Workers that may have to share a CPU take turns after each batch
	// (see mmsgWorker.yield).
	shared := len(s.udp) > 1
	s.serving = true
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(u, shared)
	}
	for _, t := range s.tcp {
		s.wg.Add(1)
		go s.serveTCP(t)
	}

	return nil
}

// udpReadBuffer is the receive buffer asked of the kernel for each UDP
// socket, so bursts queue instead of dropping; the kernel may cap it at
// net.core.rmem_max.
const udpReadBuffer = 4 << 20

// bindGroup binds n UDP sockets and one TCP listener on addr, all on the
// same port.
func bindGroup(ctx context.Context, addr string, n int) ([]*net.UDPConn, *net.TCPListener, error) {
	first, l, err := bindPair(ctx, addr, n > 1)
	if err != nil {
		return nil, nil, err
	}
	us := []*net.UDPConn{first}
	bound := first.LocalAddr().String()
	lc := net.ListenConfig{Control: reusePort}
	for len(us) < n {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			for _, u := range us {
				_ = u.Close()
			}
			_ = l.Close()

			return nil, nil, fmt.Errorf("listen udp %s (socket %d of %d): %w", bound, len(us)+1, n, err)
		}
		us = append(us, pc.(*net.UDPConn)) //nolint:forcetypeassert // "udp" gives a UDPConn
	}
	for _, u := range us {
		growReadBuffer(u, udpReadBuffer)
	}

	return us, l, nil
}

// bindPair binds UDP and TCP on addr, on the same port. With port 0 it
// retries until the port UDP got is also free for TCP.
func bindPair(ctx context.Context, addr string, shared bool) (*net.UDPConn, *net.TCPListener, error) {
	_, port, err := splitListen(addr)
	if err != nil {
		return nil, nil, err
	}
	var lc, ulc net.ListenConfig
	if shared {
		ulc.Control = reusePort
	}
	const attempts = 20
	for range attempts {
		pc, err := ulc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err // "listen udp ADDR: bind: …" already

		}
		u := pc.(*net.UDPConn)                                                                     //nolint:forcetypeassert // "udp" gives a UDPConn
		tcpAddr := net.JoinHostPort(hostOf(addr), strconv.Itoa(u.LocalAddr().(*net.UDPAddr).Port)) //nolint:forcetypeassert // as above
		l, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return u, l.(*net.TCPListener), nil //nolint:forcetypeassert // "tcp" gives a TCPListener
		}
		_ = u.Close()
		if port != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err // "listen tcp ADDR: bind: …" already
		}
	}

	return nil, nil, fmt.Errorf("listen %s: %w: no port free for both UDP and TCP after %d tries", addr, syscall.EADDRINUSE, attempts)
}

func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)

	return host
}

// Addrs returns the bound address of every listener, in the order of
// Config.Listen; UDP and TCP share each one. It is empty before Start.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()

	return append([]netip.AddrPort(nil), s.addrs...)
}

// Close stops the listeners and ends every TCP connection: each one
// answers the requests it has already read, finishes the answer it is
// writing and closes. Connections still open after a short grace (half a
// second: a client that does not read its answers) are closed as they
// are, so Close returns in about that time whatever the clients do. It
// returns the errors met while closing.
func (s *Server) Close() error {
	s.mu.Lock()
	err := s.closeLocked()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(s.closeGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			_ = c.Close() // wakes a reader or writer at once
		}
		s.mu.Unlock()
		s.log.Warnf("closed %d TCP connection(s) still busy %s after closing the listeners", n, s.closeGrace)
		<-done
	}

	return err
}

// armRead sets c's read deadline for its next message: the idle timeout
// from now, unless the server is closing. Close sets stopping and then
// every connection's read deadline in the past; checking stopping after
// setting our own deadline means that either Close's deadline came later
// and stands, or stopping is seen here and the past deadline is put back.
// Messages already buffered are still answered; the next read then fails.
// It reports false when the deadline cannot be set: the connection is gone.
func (s *Server) armRead(c stream) bool {
	if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
		return false
	}
	if s.stopping.Load() {
		return c.SetReadDeadline(time.Unix(1, 0)) == nil
	}

	return true
}

func (s *Server) closeLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopping.Store(true)
	var errs []error
	for _, u := range s.udp {
		if s.serving {
			u.wake() // its worker closes it
		} else {
			u.close()
		}
	}
	for _, l := range s.tcp {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close tcp %s: %w", l.Addr(), err))
		}
	}
	// A read deadline in the past wakes every connection's reader; each one
	// then closes its connection after any response it is writing.
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}

	return errors.Join(errs...)
}

// Amplification is the most a request can draw from a server, in bytes
// out per byte in: the request and the answer it gets.
type Amplification struct {
	Request, Response int
	// IPv6 is the family of the client that gets this answer.
	IPv6 bool
	// AddressExtra is what the client's own IPv6 address adds to the
	// answer over an IPv4 one: 12 bytes in an answer that carries it,
	// else 0.
	AddressExtra int
}

// Ratio is the answer's size over the request's.
func (a Amplification) Ratio() float64 {
	if a.Request == 0 {
		return 0
	}

	return float64(a.Response) / float64(a.Request)
}

// ipv6AddressExtra is how much longer an IPv6 address attribute is than
// an IPv4 one.
const ipv6AddressExtra = 12

// RatioAsIPv4 is Ratio with the client's own IPv6 address counted at the
// size of an IPv4 one: what the configuration (SOFTWARE, RESPONSE-ORIGIN),
// not the client's family, makes of the answer. MaxAmplification picks the
// worst answer by it, so both families are judged on the same scale.
func (a Amplification) RatioAsIPv4() float64 {
	a.Response -= a.AddressExtra

	return a.Ratio()
}

// MaxAmplification builds, with this server's configuration, the answers
// that draw the most bytes per byte received: to the smallest Binding
// request, to the smallest one with an unknown attribute (a 420) and, with
// RFC3489, to the smallest classic ones, for each family the server can
// answer (both before Start, or behind PROXY protocol). It returns the
// worst by RatioAsIPv4. SOFTWARE and RESPONSE-ORIGIN are what an
// operator adds to it.
func (s *Server) MaxAmplification() Amplification {
	v4, v6 := s.families()
	// The smallest request of each kind; transaction IDs do not matter.
	bare := wire.NewBuilder(nil, wire.BindingRequest, wire.TransactionID{})
	unknown := wire.NewBuilder(nil, wire.BindingRequest, wire.TransactionID{})
	unknown.Add(0x7F01, nil) // comprehension-required, unknown, empty
	builders := []*wire.Builder{&bare, &unknown}
	if s.cfg.RFC3489 {
		var id [wire.ClassicTransactionIDSize]byte
		classic := wire.NewClassicBuilder(nil, wire.BindingRequest, id)
		change := wire.NewClassicBuilder(nil, wire.BindingRequest, id)
		change.AddChangeRequest(wire.ChangeIP | wire.ChangePort)
		builders = append(builders, &classic, &change)
	}
	reqs := make([][]byte, 0, len(builders))
	for _, b := range builders {
		req, _ := b.Finish() // fixed attributes that always encode
		reqs = append(reqs, req)
	}
	var worst Amplification
	sc := newScratch()
	for _, src := range []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("[2001:db8::1]:1"),
	} {
		if ipv6 := src.Addr().Is6(); (ipv6 && !v6) || (!ipv6 && !v4) {
			continue
		}
		for _, req := range reqs {
			resp, res := s.h.handle(sc, req, src)
			a := Amplification{Request: len(req), Response: len(resp), IPv6: src.Addr().Is6()}
			if a.IPv6 && res.outcome == outcomeSuccess {
				a.AddressExtra = ipv6AddressExtra
			}
			if a.RatioAsIPv4() > worst.RatioAsIPv4() {
				worst = a
			}
		}
	}

	return worst
}

// families reports which client families the server can answer: those of
// its bound addresses (a wildcard IPv6 one takes IPv4 too), or both
// before Start or when PROXY protocol may name clients of either.
func (s *Server) families() (v4, v6 bool) {
	s.mu.Lock()
	addrs := s.addrs
	s.mu.Unlock()
	if len(addrs) == 0 || s.proxy.enabled {
		return true, true
	}
	for _, a := range addrs {
		switch ip := a.Addr(); {
		case ip.Is4() || ip.Is4In6():
			v4 = true
		case ip.IsUnspecified():
			v4, v6 = true, true
		default:
			v6 = true
		}
	}

	return v4, v6
}

// limited applies the rate limits to an answer about to go to client:
// when one refuses it, res becomes that discard and the answer is dropped.
func (s *Server) limited(client netip.AddrPort, now int64, res *result) bool {
	r := s.limit.allow(client.Addr(), now)
	if r == reasonNone {
		return false
	}
	res.outcome, res.reason = outcomeDiscard, r
	if s.limit.shouldLog(now) {
		if r == reasonRateLimited {
			s.log.Warnf("rate limiting %s: over %g answers/s (burst %g); if it is a NAT pool or a load balancer that SNATs every client, exempt it with --rate-limit-exempt (or fix the SNAT: see stuncheck)",
				s.limit.cfg.sourceName(client.Addr()), s.limit.cfg.PerSource, s.limit.cfg.Burst)
		} else {
			s.log.Warnf("global rate limit of %g answers/s reached; dropping answers", s.limit.cfg.Global)
		}
	}

	return true
}

func familyOf(a netip.Addr) family {
	if a.Unmap().Is4() {
		return familyIPv4
	}

	return familyIPv6
}
