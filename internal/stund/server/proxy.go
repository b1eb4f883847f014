package server

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyResult says what became of a PROXY protocol header, or of its
// absence where one was required; it is a metric label value.
type proxyResult uint8

const (
	proxyNone      proxyResult = iota // no header, none needed
	proxyAccepted                     // a header from a trusted source: its client address is used
	proxyLocal                        // a LOCAL header (a health check): the real source is used
	proxyUntrusted                    // a header from a source not in the trusted CIDRs: refused
	proxyMissing                      // a trusted source sent no header where one is required: refused
	proxyMalformed                    // a header that does not parse, or not for IP: refused
	proxyResultCount
)

var proxyResultNames = [proxyResultCount]string{"none", "accepted", "local", "untrusted", "missing", "malformed"}

func (r proxyResult) String() string { return proxyResultNames[r] }

// refused reports whether the message or connection must be dropped.
func (r proxyResult) refused() bool {
	return r == proxyUntrusted || r == proxyMissing || r == proxyMalformed
}

// proxyPolicy decides whom PROXY protocol headers are believed from.
type proxyPolicy struct {
	enabled  bool
	trusted  []netip.Prefix
	optional bool // trusted sources may also send without a header
}

func (p *proxyPolicy) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.trusted {
		if pr.Contains(a) {
			return true
		}
	}

	return false
}

// hasSignature reports whether b starts like a PROXY protocol header, v1
// or v2. Neither can be a STUN message: v1 starts with "PROXY" (first two
// bits 01), v2 would be a STUN message type 0x0D0A, which no method has.
func hasSignature(b []byte) bool {
	return bytes.HasPrefix(b, proxyproto.SIGV2) || bytes.HasPrefix(b, proxyproto.SIGV1)
}

// unwrapDatagram applies the policy to one UDP datagram from src. It
// returns the STUN payload and the client address to answer about; the
// answer itself always goes back to src, the datagram's real sender.
func (p *proxyPolicy) unwrapDatagram(b []byte, src netip.AddrPort) ([]byte, netip.AddrPort, proxyResult) {
	if !p.enabled {
		return b, src, proxyNone
	}
	signed := hasSignature(b)
	if !p.isTrusted(src.Addr()) {
		if signed {
			return nil, src, proxyUntrusted
		}

		return b, src, proxyNone
	}
	if !signed {
		if p.optional {
			return b, src, proxyNone
		}

		return nil, src, proxyMissing
	}
	hdr, payload, err := proxyproto.ParseUDPDatagram(b)
	if err != nil {
		return nil, src, proxyMalformed
	}

	return headerClient(hdr, payload, src)
}

// headerClient reads the client address out of a parsed header: LOCAL
// keeps the real source, PROXY for IPv4 or IPv6 gives the client.
func headerClient(hdr *proxyproto.Header, payload []byte, src netip.AddrPort) ([]byte, netip.AddrPort, proxyResult) {
	if hdr.Command.IsLocal() {
		return payload, src, proxyLocal
	}
	var client netip.AddrPort
	switch a := hdr.SourceAddr.(type) {
	case *net.UDPAddr:
		client = a.AddrPort()
	case *net.TCPAddr:
		client = a.AddrPort()
	default:
		return nil, src, proxyMalformed
	}
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	if !client.IsValid() {
		return nil, src, proxyMalformed
	}

	return payload, client, proxyAccepted
}

// readStreamHeader applies the policy to the start of a TCP connection
// from peer, reading a header from r when one is there. It returns the
// client address for every request on the connection.
func (p *proxyPolicy) readStreamHeader(r *bufio.Reader, peer netip.AddrPort) (netip.AddrPort, proxyResult) {
	if !p.enabled {
		return peer, proxyNone
	}
	// A STUN message is at least 20 bytes and a signature at most 12, so
	// peeking for one never waits for bytes a client would not send.
	first, err := r.Peek(len(proxyproto.SIGV2))
	if err != nil {
		if len(first) == 0 {
			return peer, proxyNone // closed or idle before a byte: nothing to judge
		}
		first = first[:len(first):len(first)]
	}
	signed := hasSignature(first)
	if !p.isTrusted(peer.Addr()) {
		if signed {
			return peer, proxyUntrusted
		}

		return peer, proxyNone
	}
	if !signed {
		if p.optional {
			return peer, proxyNone
		}

		return peer, proxyMissing
	}
	var hdr *proxyproto.Header
	if bytes.HasPrefix(first, proxyproto.SIGV1) {
		hdr, err = readV1(r)
	} else {
		hdr, err = proxyproto.Read(r)
	}
	if err != nil {
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) && p.optional {
			return peer, proxyNone
		}

		return peer, proxyMalformed
	}
	_, client, res := headerClient(hdr, nil, peer)

	return client, res
}

// maxV1Header is the longest PROXY v1 line, CRLF included.
const maxV1Header = 107

// readV1 reads a PROXY v1 header line that may arrive in pieces, as TCP
// is free to deliver it, for as long as the connection's read deadline
// (the idle timeout) allows. The library refuses a line that is not all
// in its first read; here it waits for the line's end, reading at most
// maxV1Header bytes, then hands the complete line to the library.
func readV1(r *bufio.Reader) (*proxyproto.Header, error) {
	n := 0 // bytes of r's buffer known to hold no line end
	for {
		buf, err := r.Peek(min(max(r.Buffered(), n+1), maxV1Header))
		if i := bytes.IndexByte(buf[n:], '\n'); i >= 0 {
			line := buf[:n+i+1]
			hdr, perr := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(line), maxV1Header+1))
			if _, derr := r.Discard(len(line)); derr != nil && perr == nil {
				perr = derr
			}

			return hdr, perr
		}
		if err != nil {
			return nil, err
		}
		if len(buf) >= maxV1Header {
			return nil, proxyproto.ErrVersion1HeaderTooLong
		}
		n = len(buf)
	}
}
