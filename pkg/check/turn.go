package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/stund/stund/internal/netclass"
	"github.com/stund/stund/internal/stuncheck/turn"
)

// DefaultSecretTTL is how long the REST credentials made from
// TURNConfig.Secret are valid.
const DefaultSecretTTL = time.Hour

// TURNConfig holds what turn: and turns: targets need. The password and
// the secret never appear in a Report.
type TURNConfig struct {
	// Username and Password are long-term credentials (RFC 8489 §9.2).
	// With Secret, Username is the name part of the REST username.
	Username string
	Password string
	// Secret is the TURN REST API shared secret (coturn's
	// static-auth-secret): the username becomes EXPIRY[:Username] and the
	// password base64(HMAC-SHA1(Secret, username)).
	Secret string
	// SecretTTL is how far in the future the REST username expires; zero
	// means DefaultSecretTTL. A negative TTL makes credentials that have
	// already expired.
	SecretTTL time.Duration
	// RootCAs verify turns: servers; nil means the system roots.
	RootCAs *x509.CertPool
	// ServerName is the name a turns: server's certificate must carry;
	// empty means the target's host.
	ServerName string
}

// Mechanism names the credential mechanism of c: "rest" or "long-term".
func (c TURNConfig) Mechanism() string {
	if c.Secret != "" {
		return "rest"
	}

	return "long-term"
}

// credentials returns the credentials to send, made now.
func (c TURNConfig) credentials(now time.Time) turn.Credentials {
	if c.Secret == "" {
		return turn.Credentials{Username: c.Username, Password: c.Password}
	}
	ttl := c.SecretTTL
	if ttl == 0 {
		ttl = DefaultSecretTTL
	}

	return turn.RESTCredentials(c.Secret, c.Username, now.Add(ttl))
}

// AuthStatus is the outcome of a TURN probe's authentication.
type AuthStatus string

// Authentication outcomes.
const (
	AuthOK         AuthStatus = "ok"
	AuthStaleNonce AuthStatus = "stale-nonce-recovered"
	AuthRejected   AuthStatus = "rejected"
	AuthError      AuthStatus = "error"
)

// RelayedClass says what kind of address the server relays from.
type RelayedClass string

// Relayed address classes.
const (
	// RelayedLoadBalancer is the address the client sent to: the load
	// balancer's, which is right when it forwards the relay ports.
	RelayedLoadBalancer RelayedClass = "load-balancer"
	RelayedPublic       RelayedClass = "public"
	// RelayedPrivate is an RFC 1918 or ULA address: a pod's or a node's.
	RelayedPrivate     RelayedClass = "private"
	RelayedCGNAT       RelayedClass = "cgnat"
	RelayedLinkLocal   RelayedClass = "link-local"
	RelayedLoopback    RelayedClass = "loopback"
	RelayedUnspecified RelayedClass = "unspecified"
	RelayedSpecial     RelayedClass = "special"
)

// RelayStatus is the outcome of the relayed round trip.
type RelayStatus string

// Relay outcomes.
const (
	RelayWorks       RelayStatus = "works"
	RelayUnreachable RelayStatus = "unreachable"
	RelayNotTested   RelayStatus = "not-tested"
)

// TURNResult is what a TURN probe found besides the mapped address.
type TURNResult struct {
	Auth TURNAuth
	// Relayed is the XOR-RELAYED-ADDRESS; invalid without an allocation.
	Relayed      netip.AddrPort
	RelayedClass RelayedClass
	// RelayedDetail says what the class means for clients.
	RelayedDetail string
	Relay         TURNRelay
	// Lifetime is the allocation's lifetime as granted.
	Lifetime time.Duration
	// Released is true when the Refresh with lifetime 0 succeeded;
	// ReleaseError says why not.
	Released     bool
	ReleaseError string
}

// TURNAuth is the authentication outcome.
type TURNAuth struct {
	Status AuthStatus
	// Mechanism is "long-term" or "rest".
	Mechanism string
	Realm     string
	// Code and Reason are the server's error, for AuthRejected and
	// AuthError.
	Code   int
	Reason string
}

// TURNRelay is the relayed round trip's outcome.
type TURNRelay struct {
	Status RelayStatus
	// Peer is the peer socket's reflexive address.
	Peer netip.AddrPort
	// RTT is the peer → relay → client → relay → peer round trip.
	RTT time.Duration
	// Detail says what happened, and why when it did not work.
	Detail string
}

// More reasons, for TURN probes. Part of the JSON interface like the others.
const (
	ReasonCredentialsRejected Reason = "credentials-rejected"    // failed: 401 after credentials
	ReasonAllocateError       Reason = "allocate-error"          // failed: another error code
	ReasonRelayedPrivate      Reason = "relayed-private-address" // failed: relayed address not reachable from the internet
	ReasonRelayedUnspecified  Reason = "relayed-unspecified"     // failed
	ReasonRelayUnreachable    Reason = "relay-unreachable"       // failed
	ReasonRelayNotTested      Reason = "relay-not-tested"        // inconclusive
	ReasonTLSCertificate      Reason = "tls-certificate"         // failed: the certificate does not verify
	ReasonTLSHandshake        Reason = "tls-handshake"           // inconclusive: no TLS on the port
)

// turnProbe allocates, tests and releases a relay on p's server, and fills
// in p; the mapped address is judged later like any probe's.
func (c *Checker) turnProbe(ctx context.Context, p *Probe, serverName string) {
	network := string(p.Transport)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.cfg.TURN.RootCAs, ServerName: c.cfg.TURN.ServerName}
	if tc.ServerName == "" {
		tc.ServerName = serverName
	}
	res, err := turn.Probe(ctx, turn.Config{
		Network: network, Server: p.Address, TLS: tc,
		Credentials: c.cfg.TURN.credentials(time.Now()),
		Timeout:     c.cfg.Timeout, RTO: c.cfg.turnRTO, LoggerFactory: c.cfg.LoggerFactory,
	})
	t := p.TURN
	t.Auth.Mechanism = c.cfg.TURN.Mechanism()
	t.Relay = TURNRelay{Status: RelayNotTested, Detail: "No allocation to relay through."}
	if err != nil {
		c.log.Debugf("turn probe %s %s: %v", p.Transport, p.Address, err)
		var te *turn.TLSError
		switch {
		case errors.As(err, &te) && te.Certificate:
			p.Judgement = Judgement{Verdict: Failed, Reason: ReasonTLSCertificate,
				Detail: fmt.Sprintf("The TLS certificate of %s does not verify for %q: %v.", p.Address, tc.ServerName, unwrapAll(te.Err)),
				Hint: "Clients refuse this server too. Serve a certificate for the name clients use, signed by a CA they trust; " +
					"if it is a private CA, pass it with --ca-file, and name the certificate's host with --tls-server-name when you connect by IP."}
		case errors.As(err, &te):
			p.Judgement = Judgement{Verdict: Inconclusive, Reason: ReasonTLSHandshake,
				Detail: fmt.Sprintf("The TLS handshake with %s failed: %v.", p.Address, unwrapAll(te.Err)),
				Hint:   "Check that this port serves TURN over TLS (coturn: tls-listening-port, cert and pkey; default 5349) and that the load balancer passes TCP through to it."}
		default:
			p.Judgement = failure(err, p.Address, p.Transport, c.cfg.Timeout)
			if p.Reason == ReasonInvalidResponse {
				p.Judgement.Hint = "Check that this port is a TURN server (RFC 8656)."
			}
		}

		return
	}
	t.Auth.Status, t.Auth.Realm = AuthStatus(res.Auth.Status), res.Auth.Realm
	t.Auth.Code, t.Auth.Reason = res.Auth.Code, res.Auth.Reason
	switch res.Auth.Status {
	case turn.AuthRejected:
		p.Judgement = rejected(res.Auth.Reason, res.Auth.Realm, c.cfg.TURN.Secret != "")

		return
	case turn.AuthError:
		p.Judgement = Judgement{Verdict: Failed, Reason: ReasonAllocateError,
			Detail: fmt.Sprintf("The server refused the allocation: error %d %s.", res.Auth.Code, res.Auth.Reason),
			Hint:   allocateErrorHint(res.Auth.Code)}

		return
	}
	p.Local, p.Mapped, p.RTT, p.Software = res.Local, res.Mapped, res.RTT, res.Software
	t.Relayed, t.Lifetime, t.Released = res.Relayed, res.Lifetime, res.Released
	if res.ReleaseErr != nil {
		t.ReleaseError = res.ReleaseErr.Error()
	}
	t.RelayedClass, t.RelayedDetail = classifyRelayed(res.Relayed.Addr(), p.Address.Addr())
	t.Relay = relayOutcome(res.Relay, t.RelayedClass, res.Relayed)
}

// allocateErrorHint says what an Allocate error code usually means.
func allocateErrorHint(code int) string {
	switch code {
	case 403:
		return "The server forbids this client: check its allowed and denied address lists and user quotas."
	case 437:
		return "An allocation from this address already exists (437 Allocation Mismatch); wait for it to expire or run again from another port."
	case 442:
		return "The server does not relay over UDP (442 Unsupported Transport Protocol): WebRTC needs UDP relays; check no-udp-relay."
	case 486:
		return "The user has too many allocations (486 Allocation Quota Reached): raise user-quota or total-quota, or release allocations."
	case 508:
		return "The server has no relay port free (508 Insufficient Capacity): widen min-port..max-port or add servers."
	default:
		return "See the server's log for why it refused the allocation."
	}
}

// rejected is the judgement of credentials that the server answered
// with 401 after they were sent.
func rejected(reason, realm string, rest bool) Judgement {
	j := Judgement{Verdict: Failed, Reason: ReasonCredentialsRejected,
		Detail: fmt.Sprintf("The server rejected the credentials (401 %s after they were sent, realm %q).", reason, realm)}
	if rest {
		j.Hint = "Credentials rejected: check the shared secret (coturn static-auth-secret, use-auth-secret) and the server's clock: " +
			"REST credentials expire, and a server whose clock is ahead sees them as expired."
	} else {
		j.Hint = "Credentials rejected: check --turn-user and --turn-password against the server's users (coturn lt-cred-mech and user=NAME:PASSWORD) in realm " +
			fmt.Sprintf("%q.", realm)
	}

	return j
}

// classifyRelayed names the kind of relayed address ip is, seen from a
// client that reached the server at target.
func classifyRelayed(ip, target netip.Addr) (RelayedClass, string) {
	ip = ip.Unmap()
	externalIP := "set coturn `external-ip=<LB IP>/<pod IP>` (or STUNner's public address)."
	switch {
	case ip == target.Unmap():
		return RelayedLoadBalancer, fmt.Sprintf("%s is the address you reached the server at: the load balancer's.", ip)
	case ip.IsUnspecified():
		return RelayedUnspecified, fmt.Sprintf("Relayed address %s is unspecified: peers cannot send to it; set the server's relay-ip or external-ip.", ip)
	}
	switch classify(ip) {
	case classPublic:
		return RelayedPublic, fmt.Sprintf("%s is a public address other than the one you reached the server at (a node's or the server's own).", ip)
	case classPrivate:
		return RelayedPrivate, fmt.Sprintf("Relayed address %s is a private address (a pod or node IP): the server does not know its public address; %s", ip, externalIP)
	case classCGNAT:
		return RelayedCGNAT, fmt.Sprintf("Relayed address %s is a shared 100.64.0.0/10 address (a pod or node IP on some networks): the server does not know its public address; %s", ip, externalIP)
	case classLinkLocal:
		return RelayedLinkLocal, fmt.Sprintf("Relayed address %s is link-local: %s", ip, externalIP)
	case classLoopback:
		return RelayedLoopback, fmt.Sprintf("Relayed address %s is a loopback address: %s", ip, externalIP)
	default:
		if netclass.Categorize(ip) == netclass.Unspecified {
			return RelayedUnspecified, fmt.Sprintf("Relayed address %s is unspecified.", ip)
		}

		return RelayedSpecial, fmt.Sprintf("Relayed address %s is a special-purpose address (%s): %s", ip, specialName(ip), externalIP)
	}
}

// relayOutcome words the relay test.
func relayOutcome(r turn.Relay, class RelayedClass, relayed netip.AddrPort) TURNRelay {
	out := TURNRelay{Status: RelayStatus(r.Status), Peer: r.Peer, RTT: r.RTT}
	switch r.Status {
	case turn.RelayWorks:
		out.Detail = fmt.Sprintf("A datagram from the peer socket %s reached you through %s, and your answer reached the peer: round trip %s.",
			r.Peer, relayed, r.RTT.Round(time.Microsecond))
		if strings.HasPrefix(r.PeerSource, "assumed") {
			out.Detail += " The peer's address was assumed (your mapped IP, the peer's local port): its own Binding request got no answer."
		}
	case turn.RelayUnreachable:
		switch {
		case r.Failed == turn.LegToPeer:
			out.Detail = fmt.Sprintf("The peer's datagram reached you through %s, but your answer sent through the relay never reached the peer %s: "+
				"a firewall drops the server's outgoing relay traffic, or the load balancer or NAT in front of the relay ports does not let it back out.", relayed, r.PeerSeen)
		case class == RelayedPublic || class == RelayedLoadBalancer:
			out.Detail = fmt.Sprintf("The relay address %s is public but nothing came back: the load balancer does not forward the relay port range "+
				"(coturn min-port..max-port, UDP) to the server, or a firewall drops it.", relayed)
		default:
			out.Detail = fmt.Sprintf("Nothing sent to the relayed address %s came back: it is not reachable from here.", relayed)
		}
		if r.Err != nil {
			out.Detail += fmt.Sprintf(" (%v)", r.Err)
		}
	default:
		out.Detail = "The relay was not tested"
		if r.Err != nil {
			out.Detail += ": " + r.Err.Error()
		}
		out.Detail += "."
	}

	return out
}

// judgeTURN combines the mapped address's judgement with what the TURN
// probe found. A rewritten mapped address comes first (it is the same
// finding as for STUN); then a relayed address that peers cannot reach,
// then a relay that does not carry traffic, then one that was not tested.
func judgeTURN(mapped Judgement, t *TURNResult) Judgement {
	if mapped.Verdict == Rewritten {
		return mapped
	}
	switch t.RelayedClass {
	case RelayedPrivate, RelayedCGNAT, RelayedLinkLocal, RelayedLoopback, RelayedSpecial:
		if t.RelayedClass == RelayedLoopback && t.Relay.Status == RelayWorks {
			break // a server on this host, tested from this host
		}

		return Judgement{Verdict: Failed, Reason: ReasonRelayedPrivate, Detail: t.RelayedDetail,
			Hint: strings.TrimSpace("Clients on the internet get this address as their relay candidate and cannot reach it. " +
				"With external-ip set to the load balancer's address, also forward the relay port range (coturn min-port..max-port, UDP) " +
				"from the load balancer to the server. " + mapped.Hint)}
	case RelayedUnspecified:
		return Judgement{Verdict: Failed, Reason: ReasonRelayedUnspecified, Detail: t.RelayedDetail, Hint: mapped.Hint}
	}
	switch t.Relay.Status {
	case RelayUnreachable:
		return Judgement{Verdict: Failed, Reason: ReasonRelayUnreachable, Detail: t.Relay.Detail,
			Hint: "Forward the relay port range (UDP) from the load balancer to the TURN server, as its own Service or NodePort range, " +
				"with the server's external-ip set to the load balancer's address."}
	case RelayNotTested:
		return Judgement{Verdict: Inconclusive, Reason: ReasonRelayNotTested, Detail: t.Relay.Detail, Hint: mapped.Hint}
	}

	return mapped
}
