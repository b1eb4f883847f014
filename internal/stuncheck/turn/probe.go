package turn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"
)

// Defaults for Config.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRTO     = 500 * time.Millisecond
	// DefaultSTUNPort is where the peer asks for its reflexive address
	// when the server's own port does not answer over UDP (a turns: or
	// TCP-only port).
	DefaultSTUNPort = 3478
)

// protoUDP is REQUESTED-TRANSPORT's value for a UDP relay (RFC 8656 §18.7).
var protoUDP = []byte{17, 0, 0, 0}

// Config says which server to test and how.
type Config struct {
	// Network is "udp", "tcp" or "tls": how the client reaches the server.
	// The relay itself is always UDP.
	Network string
	// Server is the server's address.
	Server netip.AddrPort
	// TLS configures the "tls" network: roots and server name. Nil means
	// the system roots and no server name, which only verifies IP SANs.
	TLS *tls.Config
	// Credentials are the long-term credentials.
	Credentials Credentials
	// Timeout bounds each transaction and each leg of the relay test;
	// zero means DefaultTimeout.
	Timeout time.Duration
	// RTO is the initial UDP retransmission timeout; zero means DefaultRTO.
	RTO time.Duration
	// LocalAddr, when valid, is the client's local address.
	LocalAddr netip.AddrPort
	// LoggerFactory creates the client's logger; nil means pion's default.
	LoggerFactory logging.LoggerFactory
	// BeforeAuth, when set, runs between the 401 answer and the
	// authenticated Allocate (tests use it to let a nonce go stale).
	BeforeAuth func()
}

// AuthStatus is the outcome of authenticating the Allocate request.
type AuthStatus string

// Auth outcomes.
const (
	// AuthOK: the server accepted the credentials (or asked for none).
	AuthOK AuthStatus = "ok"
	// AuthStaleNonce: the server answered 438 Stale Nonce and the retry
	// with the new nonce was accepted.
	AuthStaleNonce AuthStatus = "stale-nonce-recovered"
	// AuthRejected: the server answered 401 to the request that carried
	// the credentials.
	AuthRejected AuthStatus = "rejected"
	// AuthError: the server answered with another error code.
	AuthError AuthStatus = "error"
)

// Auth is what became of the Allocate request's authentication.
type Auth struct {
	Status AuthStatus
	// Code and Reason are the final error response's, for AuthRejected
	// and AuthError.
	Code   int
	Reason string
	// Realm is the server's REALM; empty when it asked for no credentials.
	Realm string
}

// RelayStatus is the outcome of the relayed round trip.
type RelayStatus string

// Relay outcomes.
const (
	RelayWorks       RelayStatus = "works"
	RelayUnreachable RelayStatus = "unreachable"
	RelayNotTested   RelayStatus = "not-tested"
)

// Leg names the half of the round trip that failed.
type Leg string

// Legs of the relayed round trip.
const (
	// LegToRelay: the peer's datagram to the relayed address never came
	// back to the client as a Data indication.
	LegToRelay Leg = "peer-to-relay"
	// LegToPeer: the client's Send indication never reached the peer.
	LegToPeer Leg = "relay-to-peer"
)

// Relay is what the relay test found.
type Relay struct {
	Status RelayStatus
	// Peer is the peer socket's reflexive address, as the server's STUN
	// port saw it, and PeerSource how it was learned.
	Peer       netip.AddrPort
	PeerSource string
	// PeerSeen is the peer's address in the Data indication: where the
	// relay saw the peer's datagram come from.
	PeerSeen netip.AddrPort
	// RTT is the peer → relay → client → relay → peer round trip.
	RTT time.Duration
	// Failed says which half failed (RelayUnreachable).
	Failed Leg
	// Err says why the test did not run or what failed.
	Err error
}

// Result is everything Probe learned.
type Result struct {
	// Local is the client's transport address.
	Local netip.AddrPort
	// Auth is the outcome of authentication; the other fields are set
	// only when it is AuthOK or AuthStaleNonce.
	Auth Auth
	// Mapped is the XOR-MAPPED-ADDRESS of the Allocate response: the
	// client as the server saw it.
	Mapped netip.AddrPort
	// Relayed is the XOR-RELAYED-ADDRESS: where peers send.
	Relayed  netip.AddrPort
	Lifetime time.Duration
	Software string
	// RTT is the round trip of the Allocate transaction that succeeded
	// (the authenticated one, unless the server asked for no credentials).
	RTT   time.Duration
	Relay Relay
	// Released is true when the Refresh with lifetime 0 succeeded;
	// ReleaseErr says why not.
	Released   bool
	ReleaseErr error
}

// Probe allocates a relay on the server, tests it and releases it. The
// error is non-nil when there is no outcome to report: the server could
// not be reached, the TLS handshake failed (a *TLSError), no answer came
// (ErrNoResponse) or the answer made no sense (ErrMalformed). A refused
// allocation is a Result with Auth.Status AuthRejected or AuthError.
func Probe(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RTO <= 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	log := cfg.LoggerFactory.NewLogger("turn-client")
	c, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s := newSession(c, cfg.Network != "udp", cfg.RTO, cfg.Timeout, cfg.Credentials, log)
	res := &Result{Local: addrPort(c.LocalAddr())}

	allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	// A relay of the server's family: without REQUESTED-ADDRESS-FAMILY a
	// server allocates IPv4 (RFC 8656 §7.2), which an IPv6-only path
	// cannot reach.
	transport := []stun.Setter{rawAttr{stun.AttrRequestedTransport, protoUDP}}
	if cfg.Server.Addr().Unmap().Is6() {
		transport = append(transport, rawAttr{stun.AttrRequestedAddressFamily, []byte{0x02, 0, 0, 0}})
	}
	start := time.Now()
	first, err := s.request(ctx, allocate, transport...)
	if err != nil {
		return nil, err
	}
	res.RTT = time.Since(start)
	ok := first
	switch code := errorCode(first); {
	case first.Type.Class == stun.ClassSuccessResponse:
		// The server asked for no credentials.
	case code == stun.CodeUnauthorized:
		if err := s.learnRealm(first); err != nil {
			return nil, err
		}
		res.Auth.Realm = string(s.realm)
		if cfg.BeforeAuth != nil {
			cfg.BeforeAuth()
		}
		start = time.Now()
		second, err := s.authenticated(ctx, allocate, transport...)
		if err != nil {
			return nil, err
		}
		res.RTT = time.Since(start)
		if second.Type.Class != stun.ClassSuccessResponse {
			res.Auth.Status = AuthError
			if errorCode(second) == stun.CodeUnauthorized {
				res.Auth.Status = AuthRejected
			}
			e := responseError(second)
			res.Auth.Code, res.Auth.Reason = e.Code, e.Reason

			return res, nil
		}
		ok = second
	default:
		e := responseError(first)
		res.Auth = Auth{Status: AuthError, Code: e.Code, Reason: e.Reason}

		return res, nil
	}
	res.Auth.Status = AuthOK
	if s.staleNonce > 0 {
		res.Auth.Status = AuthStaleNonce
	}
	var mapped, relayed stun.XORMappedAddress
	if err := mapped.GetFrom(ok); err != nil {
		return nil, fmt.Errorf("%w: Allocate response without XOR-MAPPED-ADDRESS", ErrMalformed)
	}
	if err := relayed.GetFromAs(ok, stun.AttrXORRelayedAddress); err != nil {
		return nil, fmt.Errorf("%w: Allocate response without XOR-RELAYED-ADDRESS", ErrMalformed)
	}
	res.Mapped, res.Relayed = xorAddrPort(mapped), xorAddrPort(relayed)
	if v, err := ok.Get(stun.AttrLifetime); err == nil && len(v) == 4 {
		res.Lifetime = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	var sw stun.Software
	if err := sw.GetFrom(ok); err == nil {
		res.Software = sw.String()
	}

	res.Relay = testRelay(ctx, s, cfg, res)

	refresh := stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	rr, err := s.authenticated(ctx, refresh, rawAttr{stun.AttrLifetime, []byte{0, 0, 0, 0}})
	switch {
	case err != nil:
		res.ReleaseErr = err
	case rr.Type.Class != stun.ClassSuccessResponse:
		res.ReleaseErr = responseError(rr)
	default:
		res.Released = true
	}
	if s.staleNonce > 0 && res.Auth.Status == AuthOK {
		res.Auth.Status = AuthStaleNonce
	}

	return res, nil
}

// dial connects to the server over cfg.Network.
func dial(ctx context.Context, cfg Config) (conn, error) {
	server := cfg.Server.String()
	d := net.Dialer{Timeout: cfg.Timeout}
	if cfg.LocalAddr.IsValid() {
		if cfg.Network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(cfg.LocalAddr)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(cfg.LocalAddr)
		}
	}
	switch cfg.Network {
	case "udp":
		c, err := d.DialContext(ctx, "udp", server)
		if err != nil {
			return nil, fmt.Errorf("udp %s: %w", server, err)
		}

		return c.(*net.UDPConn), nil
	case "tcp":
		c, err := d.DialContext(ctx, "tcp", server)
		if err != nil {
			return nil, fmt.Errorf("tcp %s: %w", server, err)
		}

		return streamConn{pionturn.NewSTUNConn(c)}, nil
	case "tls":
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = cfg.Server.Addr().String()
		}
		raw, err := d.DialContext(ctx, "tcp", server)
		if err != nil {
			return nil, fmt.Errorf("tcp %s: %w", server, err)
		}
		c := tls.Client(raw, tc)
		hctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		if err := c.HandshakeContext(hctx); err != nil {
			_ = raw.Close()

			return nil, &TLSError{Err: err, Certificate: isCertificateError(err)}
		}

		return streamConn{pionturn.NewSTUNConn(c)}, nil
	default:
		return nil, fmt.Errorf("%w %q (want udp, tcp or tls)", ErrNetwork, cfg.Network)
	}
}

func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
	)

	return errors.As(err, &verr) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// testRelay proves the relay carries traffic both ways: a peer socket
// learns its reflexive address, the client permits it, the peer sends to
// the relayed address, the client receives a Data indication and sends
// the answer back through the relay with a Send indication.
func testRelay(ctx context.Context, s *session, cfg Config, res *Result) Relay {
	r := Relay{Status: RelayNotTested}
	if res.Relayed.Addr().IsUnspecified() || res.Relayed.Port() == 0 {
		r.Err = fmt.Errorf("the relayed address %s cannot be sent to", res.Relayed)

		return r
	}
	network := "udp4"
	if res.Relayed.Addr().Is6() {
		network = "udp6"
	}
	peer, err := net.ListenUDP(network, nil)
	if err != nil {
		r.Err = fmt.Errorf("peer socket: %w", err)

		return r
	}
	defer peer.Close()
	r.Peer, r.PeerSource = peerAddress(ctx, peer, cfg, res)
	if !r.Peer.IsValid() {
		r.Err = errors.New("could not learn the peer's reflexive address")

		return r
	}
	perm, err := s.authenticated(ctx, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
		xorAddr{stun.AttrXORPeerAddress, toXOR(r.Peer)})
	if err != nil {
		r.Err = fmt.Errorf("CreatePermission: %w", err)

		return r
	}
	if perm.Type.Class != stun.ClassSuccessResponse {
		r.Err = responseError(perm)

		return r
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	ping := append([]byte("stuncheck ping "), token...)
	pong := append([]byte("stuncheck pong "), token...)
	relayed := net.UDPAddrFromAddrPort(res.Relayed)

	// Peer → relay → client.
	var sent time.Time
	got, err := retry(ctx, cfg, func() error {
		sent = time.Now()
		_, err := peer.WriteToUDP(ping, relayed)

		return err
	}, func(wait time.Duration) (bool, error) {
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case d := <-s.data:
				if bytes.Equal(d.data, ping) {
					r.PeerSeen = xorAddrPort(d.peer)

					return true, nil
				}
			case <-t.C:
				return false, nil
			case <-s.done:
				return false, s.closed()
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	})
	if err != nil || !got {
		r.Status, r.Failed, r.Err = RelayUnreachable, LegToRelay, err

		return r
	}

	// Client → relay → peer.
	send := func() error {
		m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
			xorAddr{stun.AttrXORPeerAddress, toXOR(r.PeerSeen)}, rawAttr{stun.AttrData, pong}, stun.Fingerprint)
		if err != nil {
			return err
		}
		_, err = s.c.Write(m.Raw)

		return err
	}
	buf := make([]byte, 1500)
	got, err = retry(ctx, cfg, send, func(wait time.Duration) (bool, error) {
		_ = peer.SetReadDeadline(time.Now().Add(wait))
		for {
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return false, nil
				}

				return false, err
			}
			if bytes.Equal(buf[:n], pong) && from.Addr().Unmap() == res.Relayed.Addr().Unmap() {
				return true, nil
			}
		}
	})
	if err != nil || !got {
		r.Status, r.Failed, r.Err = RelayUnreachable, LegToPeer, err

		return r
	}
	r.Status, r.RTT = RelayWorks, time.Since(sent)

	return r
}

// retry sends, then waits for the answer, resending after RTO, 2×RTO, …
// until cfg.Timeout has passed.
func retry(ctx context.Context, cfg Config, send func() error, wait func(time.Duration) (bool, error)) (bool, error) {
	deadline := time.Now().Add(cfg.Timeout)
	rto := cfg.RTO
	for time.Now().Before(deadline) {
		if err := send(); err != nil {
			return false, err
		}
		w := min(rto, time.Until(deadline))
		ok, err := wait(w)
		if ok || err != nil {
			return ok, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		rto *= 2
	}

	return false, nil
}

// peerAddress learns the peer socket's reflexive address with a Binding
// request to the server over UDP: on the server's port, then on the
// default STUN port. Failing both, it assumes the peer leaves through the
// same NAT as the client: the client's mapped IP with the peer's port.
func peerAddress(ctx context.Context, peer *net.UDPConn, cfg Config, res *Result) (netip.AddrPort, string) {
	tries := []netip.AddrPort{cfg.Server}
	if cfg.Server.Port() != DefaultSTUNPort {
		tries = append(tries, netip.AddrPortFrom(cfg.Server.Addr(), DefaultSTUNPort))
	}
	each := max(cfg.Timeout/2, cfg.RTO)
	for _, srv := range tries {
		m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		var mapped netip.AddrPort
		to := net.UDPAddrFromAddrPort(srv)
		buf := make([]byte, 1500)
		c := cfg
		c.Timeout = each
		got, _ := retry(ctx, c, func() error {
			_, err := peer.WriteToUDP(m.Raw, to)

			return err
		}, func(wait time.Duration) (bool, error) {
			_ = peer.SetReadDeadline(time.Now().Add(wait))
			for {
				n, err := peer.Read(buf)
				if err != nil {
					return false, nil //nolint:nilerr // a timeout means: send again
				}
				var r stun.Message
				r.Raw = buf[:n]
				if r.Decode() != nil || r.TransactionID != m.TransactionID || r.Type != stun.BindingSuccess {
					continue
				}
				var xa stun.XORMappedAddress
				if xa.GetFrom(&r) == nil {
					mapped = xorAddrPort(xa)

					return true, nil
				}
			}
		})
		if got {
			return mapped, "binding " + srv.String()
		}
	}
	_ = peer.SetReadDeadline(time.Time{})
	port := addrPort(peer.LocalAddr()).Port()

	return netip.AddrPortFrom(res.Mapped.Addr(), port), "assumed: mapped IP, local port"
}

func xorAddrPort(a stun.XORMappedAddress) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)

	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

func toXOR(a netip.AddrPort) stun.XORMappedAddress {
	return stun.XORMappedAddress{IP: a.Addr().AsSlice(), Port: int(a.Port())}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(a.String())

	return unmap(ap)
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
