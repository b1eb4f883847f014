package check

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the STUN port used when a target names none (RFC 8489).
const DefaultPort = 3478

// DefaultTLSPort is the port of a turns: target that names none (RFC 8656).
const DefaultTLSPort = 5349

// Transport is a STUN transport: "udp" or "tcp", or "tls" for turns:
// targets.
type Transport string

// The transports a check probes.
const (
	UDP Transport = "udp"
	TCP Transport = "tcp"
	// TLS is TLS over TCP, the transport of turns: targets only; it is
	// probed when Config.Transports has TCP.
	TLS Transport = "tls"
)

// Scheme says what kind of server a target is.
type Scheme string

// Schemes of targets.
const (
	// SchemeSTUN is a STUN server: host[:port] or stun:host[:port].
	SchemeSTUN Scheme = "stun"
	// SchemeTURN is a TURN server reached over UDP or TCP (turn: URI).
	SchemeTURN Scheme = "turn"
	// SchemeTURNS is a TURN server reached over TLS (turns: URI).
	SchemeTURNS Scheme = "turns"
)

// Family is an address family as it appears in reports: "ipv4" or "ipv6".
type Family string

// Address families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// familyOf returns the family of ip (IPv4-mapped IPv6 counts as IPv4).
func familyOf(ip netip.Addr) Family {
	if ip.Unmap().Is4() {
		return IPv4
	}

	return IPv6
}

// Target is a STUN server to probe, as the user wrote it and parsed.
type Target struct {
	// Input is the text the target was parsed from.
	Input string
	// Host is a host name or an IP literal (no brackets).
	Host string
	// Port is the server port.
	Port uint16
	// Transports, when set, limits the probes of this target to these
	// transports (a Service port has one protocol, a turn: URI may name
	// one); Config.Transports still applies.
	Transports []Transport
	// Scheme is SchemeTURN or SchemeTURNS for TURN servers; empty means
	// SchemeSTUN.
	Scheme Scheme
}

// IsTURN reports whether t is a TURN server (a turn: or turns: URI).
func (t Target) IsTURN() bool { return t.Scheme == SchemeTURN || t.Scheme == SchemeTURNS }

// IP returns the target's address when Host is an IP literal.
func (t Target) IP() (netip.Addr, bool) {
	ip, err := netip.ParseAddr(t.Host)
	if err != nil {
		return netip.Addr{}, false
	}

	return ip.Unmap(), true
}

// String returns host:port, bracketing IPv6 literals.
func (t Target) String() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// ParseTarget parses host, host:port, [v6]:port, a bare IPv6 literal, a
// stun: URI (RFC 7064: stun:host[:port], no "//", no query), or a TURN URI
// (RFC 7065: turn:host[:port][?transport=udp|tcp], turns:host[:port]
// [?transport=tcp]). The port defaults to 3478, 5349 for turns:. stuns:
// URIs (STUN over TLS) are rejected: stuncheck probes plain UDP and TCP,
// which is what a load balancer rewrites; turns:?transport=udp (DTLS) is
// rejected too. Errors are an *InputError wrapping ErrBadTarget.
func ParseTarget(s string) (Target, error) {
	t := Target{Input: s}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return t, &InputError{Err: ErrBadTarget, Input: s, msg: "empty target"}
	}
	if scheme, after, ok := strings.Cut(rest, ":"); ok && isScheme(scheme) && !allDigits(after) {
		switch strings.ToLower(scheme) {
		case "stun":
		case "turn", "turns":
			return parseTURN(s, Scheme(strings.ToLower(scheme)), after)
		case "stuns":
			return t, badTarget(s, "stuns: (STUN over TLS) is not supported; "+
				"stuncheck probes plain UDP and TCP: use stun:HOST[:PORT] with the server's plain port")
		default:
			return t, badTarget(s, fmt.Sprintf("unsupported scheme %q (want host[:port], stun:host[:port], turn:host[:port] or turns:host[:port])", scheme))
		}
		if strings.HasPrefix(after, "//") {
			return t, badTarget(s, fmt.Sprintf("a stun: URI has no \"//\" (RFC 7064): write stun:%s", strings.TrimPrefix(after, "//")))
		}
		if strings.ContainsAny(after, "?#/@") {
			return t, badTarget(s, "a stun: URI is only stun:host[:port]")
		}
		rest = after
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return t, badTarget(s, err.Error())
	}
	t.Host, t.Port = host, port

	return t, nil
}

// parseTURN parses what follows "turn:" or "turns:" in s.
func parseTURN(s string, scheme Scheme, rest string) (Target, error) {
	t := Target{Input: s, Scheme: scheme}
	form := string(scheme) + ":HOST[:PORT][?transport=udp|tcp]"
	if scheme == SchemeTURNS {
		form = "turns:HOST[:PORT][?transport=tcp]"
	}
	if strings.HasPrefix(rest, "//") {
		return t, badTarget(s, fmt.Sprintf("a %s: URI has no \"//\" (RFC 7065): write %s:%s", scheme, scheme, strings.TrimPrefix(rest, "//")))
	}
	hostPort, query, hasQuery := strings.Cut(rest, "?")
	if strings.ContainsAny(hostPort, "#/@") || strings.Contains(query, "#") {
		return t, badTarget(s, "a "+string(scheme)+": URI is "+form)
	}
	if hasQuery {
		key, val, _ := strings.Cut(query, "=")
		if !strings.EqualFold(key, "transport") || strings.Contains(val, "&") {
			return t, badTarget(s, fmt.Sprintf("unknown query %q: the only one is ?transport= (%s)", query, form))
		}
		switch tr := Transport(strings.ToLower(val)); {
		case tr == TCP && scheme == SchemeTURNS:
			t.Transports = []Transport{TLS}
		case tr == UDP && scheme == SchemeTURNS:
			return t, badTarget(s, "turns: over UDP is DTLS, which stuncheck does not test: use turns:HOST[:PORT] (TLS over TCP) or turn:HOST[:PORT]?transport=udp")
		case tr == UDP || tr == TCP:
			t.Transports = []Transport{tr}
		default:
			return t, badTarget(s, fmt.Sprintf("transport %q: want udp or tcp (%s)", val, form))
		}
	} else if scheme == SchemeTURNS {
		t.Transports = []Transport{TLS}
	}
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return t, badTarget(s, err.Error())
	}
	if scheme == SchemeTURNS && !hasPort(hostPort) {
		port = DefaultTLSPort
	}
	t.Host, t.Port = host, port

	return t, nil
}

// hasPort reports whether host[:port] text names a port.
func hasPort(s string) bool {
	if strings.HasPrefix(s, "[") {
		_, tail, _ := strings.Cut(s, "]")

		return strings.HasPrefix(tail, ":")
	}

	return strings.Count(s, ":") == 1
}

// badTarget is the error for target s, which does not parse because of why.
func badTarget(s, why string) *InputError {
	return &InputError{Err: ErrBadTarget, Input: s, msg: fmt.Sprintf("target %q: %s", s, why)}
}

// isScheme reports whether s looks like a URI scheme rather than a host
// name followed by a port ("example.com:3478" has a numeric tail, so the
// caller's Cut only matches schemes that are letters followed by more).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	l := strings.ToLower(s)

	return l == "stun" || l == "stuns" || l == "turn" || l == "turns" || l == "http" || l == "https" || l == "udp" || l == "tcp"
}

// allDigits reports whether s is a port number, so that "stun:3478" is the
// host "stun" on port 3478 rather than a URI naming host "3478".
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}

	return true
}

func splitHostPort(s string) (string, uint16, error) {
	var host, portStr string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("missing ']'")
		}
		host = s[1:end]
		tail := s[end+1:]
		switch {
		case tail == "":
		case strings.HasPrefix(tail, ":"):
			portStr = tail[1:]
			if portStr == "" {
				return "", 0, fmt.Errorf("empty port")
			}
		default:
			return "", 0, fmt.Errorf("unexpected %q after ']'", tail)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", 0, fmt.Errorf("%q is not an IPv6 address", host)
		}
	case strings.Count(s, ":") > 1:
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return "", 0, fmt.Errorf("%q is not an IPv6 address (write [v6]:port to give a port)", s)
		}
		host = s
	default:
		var ok bool
		host, portStr, ok = strings.Cut(s, ":")
		if ok && portStr == "" {
			return "", 0, fmt.Errorf("empty port")
		}
	}
	if host == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else if err := checkHostName(host); err != nil {
		return "", 0, err
	}
	port := uint16(DefaultPort)
	if portStr != "" {
		p, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || p == 0 {
			return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
		}
		port = uint16(p)
	}

	return host, port, nil
}

func checkHostName(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not a valid host name or IP address", h)
			}
		}
	}

	return nil
}
