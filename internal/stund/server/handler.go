package server

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"

	"github.com/pion/stun/v3"
)

const (
	headerSize      = 20
	magicCookie     = 0x2112A442
	fingerprintXOR  = 0x5354554e
	fingerprintType = 0x8028
	bindingRequest  = 0x0001
	attrChangeReq   = 0x0003

	// maxUnknownListed bounds UNKNOWN-ATTRIBUTES, so a 420 answer stays
	// small however many unknown attributes come: 124 bytes at most. It
	// can still be larger than its request: a 24-byte request with one
	// unknown attribute draws a 64-byte 420 (2.7x), which is why a 420
	// carries no SOFTWARE.
	maxUnknownListed = 32
)

// outcome says what the handler did with one message.
type outcome uint8

const (
	outcomeSuccess  outcome = iota // answered with a Binding success response
	outcomeError420                // answered with 420 Unknown Attribute
	outcomeDiscard                 // silently discarded
)

// reason names why a message was discarded; it is a metric label value.
type reason uint8

const (
	reasonNone              reason = iota
	reasonShort                    // fewer than 20 bytes
	reasonNotSTUN                  // first two bits not zero
	reasonBadLength                // length not a multiple of 4 or not matching the datagram
	reasonBadCookie                // wrong magic cookie and not a classic request we answer
	reasonRFC3489Disabled          // classic RFC 3489 Binding request, answering them is off
	reasonMalformed                // attributes do not parse
	reasonBadFingerprint           // FINGERPRINT present but not last or not matching
	reasonIndication               // indications are never answered
	reasonResponse                 // success or error responses are never answered
	reasonUnsupportedMethod        // a request for a method other than Binding
	reasonTooLarge                 // over the maximum message size (TCP)
	reasonBadSource                // from port 0 or an address no answer may go to
	reasonRateLimited              // over the per-source rate limit
	reasonGlobalRateLimited        // over the global rate limit
	reasonCount
)

var reasonNames = [reasonCount]string{
	reasonNone:              "none",
	reasonShort:             "short",
	reasonNotSTUN:           "not_stun",
	reasonBadLength:         "bad_length",
	reasonBadCookie:         "bad_cookie",
	reasonRFC3489Disabled:   "rfc3489_disabled",
	reasonMalformed:         "malformed",
	reasonBadFingerprint:    "bad_fingerprint",
	reasonIndication:        "indication",
	reasonResponse:          "response",
	reasonUnsupportedMethod: "unsupported_method",
	reasonTooLarge:          "too_large",
	reasonBadSource:         "bad_source",
	reasonRateLimited:       "rate_limited",
	reasonGlobalRateLimited: "global_rate_limited",
}

func (r reason) String() string { return reasonNames[r] }

// understood lists the comprehension-required attributes (0x0000-0x7FFF)
// that a Binding request may carry without being refused. A basic server
// does not authenticate, so credentials are accepted and ignored (RFC 5389
// §13); ICE's PRIORITY and USE-CANDIDATE are harmless. CHANGE-REQUEST is
// handled on its own: it is understood only when it asks for no change.
var understood = map[uint16]bool{
	0x0001: true, // MAPPED-ADDRESS
	0x0006: true, // USERNAME
	0x0008: true, // MESSAGE-INTEGRITY
	0x0009: true, // ERROR-CODE
	0x000A: true, // UNKNOWN-ATTRIBUTES
	0x0014: true, // REALM
	0x0015: true, // NONCE
	0x001C: true, // MESSAGE-INTEGRITY-SHA256
	0x001D: true, // PASSWORD-ALGORITHM
	0x001E: true, // USERHASH
	0x0020: true, // XOR-MAPPED-ADDRESS
	0x0024: true, // PRIORITY
	0x0025: true, // USE-CANDIDATE
}

// handler turns one received STUN message into a response or silence. It
// holds only configuration and is safe for concurrent use; per-worker
// scratch space lives in a scratch value.
type handler struct {
	software []byte
	// origin4 and origin6 are the RESPONSE-ORIGIN sent to IPv4 and to
	// IPv6 clients; invalid sends none.
	origin4, origin6 netip.AddrPort
	rfc3489          bool
}

// scratch is the reusable state of one worker: decoded request, response
// under construction and the list of unknown attributes.
type scratch struct {
	in      stun.Message
	out     stun.Message
	unknown [maxUnknownListed]uint16
	attr    [32]byte // one attribute value: an address, ERROR-CODE, a CRC
	list    [2 * maxUnknownListed]byte
}

func newScratch() *scratch {
	s := &scratch{}
	s.out.Raw = make([]byte, 0, 576)
	s.in.Attributes = make(stun.Attributes, 0, 16)
	s.out.Attributes = make(stun.Attributes, 0, 8)

	return s
}

// result is what handle reports to the transport for counting.
type result struct {
	outcome outcome
	reason  reason
	binding bool // a well-formed Binding request (classic ones included)
}

// handle applies the receive rules of RFC 8489 §6.3 to the message b that
// arrived from src. When the message is to be answered it returns the
// response, which aliases s and is valid until the next call.
func (h *handler) handle(s *scratch, b []byte, src netip.AddrPort) ([]byte, result) {
	if !answerable(src) {
		return nil, discard(reasonBadSource)
	}
	if len(b) < headerSize {
		return nil, discard(reasonShort)
	}
	if b[0]&0xC0 != 0 {
		return nil, discard(reasonNotSTUN)
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length%4 != 0 || headerSize+length != len(b) {
		return nil, discard(reasonBadLength)
	}
	if binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		if binary.BigEndian.Uint16(b[0:2]) != bindingRequest {
			return nil, discard(reasonBadCookie)
		}
		if !h.rfc3489 {
			return nil, discard(reasonRFC3489Disabled)
		}
		change, ok := classicChangeRequest(b)
		if !ok {
			return nil, discard(reasonMalformed)
		}
		if change {
			return classicError420(s, b), result{outcome: outcomeError420, binding: true}
		}

		return h.classic(s, b, src), result{outcome: outcomeSuccess, binding: true}
	}

	s.in.Raw = b
	if err := s.in.Decode(); err != nil {
		return nil, discard(reasonMalformed)
	}
	switch s.in.Type.Class {
	case stun.ClassIndication:
		return nil, discard(reasonIndication)
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		return nil, discard(reasonResponse)
	}
	if s.in.Type.Method != stun.MethodBinding {
		return nil, discard(reasonUnsupportedMethod)
	}
	if !fingerprintOK(b, s.in.Attributes) {
		return nil, discard(reasonBadFingerprint)
	}

	unknown := h.unknownRequired(s)
	if len(unknown) > 0 {
		return h.error420(s, unknown), result{outcome: outcomeError420, binding: true}
	}

	return h.success(s, src), result{outcome: outcomeSuccess, binding: true}
}

// answerable reports whether an answer may be sent to src: never to port
// 0, an unspecified, multicast or broadcast address, where a forged source
// would turn the server into a reflector.
func answerable(src netip.AddrPort) bool {
	a := src.Addr().Unmap()

	return src.Port() != 0 && a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func discard(r reason) result { return result{outcome: outcomeDiscard, reason: r} }

// fingerprintOK reports whether FINGERPRINT, when present, is the last
// attribute and matches the CRC-32 of everything before it. Its absence is
// fine: a server MUST NOT require it.
func fingerprintOK(b []byte, attrs stun.Attributes) bool {
	for i, a := range attrs {
		if a.Type != stun.AttrFingerprint {
			continue
		}
		if i != len(attrs)-1 || a.Length != 4 {
			return false
		}
		n := len(b)
		if binary.BigEndian.Uint16(b[n-8:]) != fingerprintType {
			return false
		}
		want := binary.BigEndian.Uint32(b[n-4:])

		return crc32.ChecksumIEEE(b[:n-8])^fingerprintXOR == want
	}

	return true
}

// unknownRequired lists the comprehension-required attributes the request
// carries that this server does not understand, plus CHANGE-REQUEST when it
// asks for a change of address or port, which a single-address server
// cannot honour (RFC 5780 §6.1).
func (h *handler) unknownRequired(s *scratch) []uint16 {
	n := 0
	for _, a := range s.in.Attributes {
		t := uint16(a.Type)
		if t >= 0x8000 || understood[t] {
			continue
		}
		if t == attrChangeReq && len(a.Value) == 4 && binary.BigEndian.Uint32(a.Value)&0x6 == 0 {
			continue
		}
		if n < len(s.unknown) && !contains(s.unknown[:n], t) {
			s.unknown[n] = t
			n++
		}
	}

	return s.unknown[:n]
}

func contains(list []uint16, t uint16) bool {
	for _, v := range list {
		if v == t {
			return true
		}
	}

	return false
}

// startResponse writes the header of a response of type t to the request
// being handled.
func startResponse(s *scratch, t stun.MessageType) {
	s.out.Reset()
	s.out.Type = t
	s.out.TransactionID = s.in.TransactionID
	s.out.WriteHeader()
}

// finish appends SOFTWARE (when configured) and FINGERPRINT to a
// success response.
func (h *handler) finish(s *scratch) []byte {
	if len(h.software) > 0 {
		s.out.Add(stun.AttrSoftware, h.software)
	}

	return addFingerprint(s)
}

// addFingerprint appends FINGERPRINT, which comes last.
func addFingerprint(s *scratch) []byte {
	s.out.Length += 8
	s.out.WriteLength()
	crc := crc32.ChecksumIEEE(s.out.Raw) ^ fingerprintXOR
	s.out.Length -= 8
	binary.BigEndian.PutUint32(s.attr[:4], crc)
	s.out.Add(stun.AttrFingerprint, s.attr[:4])

	return s.out.Raw
}

func (h *handler) success(s *scratch, src netip.AddrPort) []byte {
	startResponse(s, stun.BindingSuccess)
	addXORAddress(s, stun.AttrXORMappedAddress, src)
	if o := h.origin(src); o.IsValid() {
		addPlainAddress(s, stun.AttrResponseOrigin, o)
	}

	return h.finish(s)
}

// origin returns the RESPONSE-ORIGIN for a client at src: the configured
// one of src's family, so that a client never learns an origin it could
// not have reached.
func (h *handler) origin(src netip.AddrPort) netip.AddrPort {
	if src.Addr().Unmap().Is4() {
		return h.origin4
	}

	return h.origin6
}

// error420 answers unknown comprehension-required attributes. It carries
// no SOFTWARE: whoever sent them is not a client worth greeting, and
// without it the answer to the smallest such request (24 bytes) is 64
// bytes, at most 2.7 times its size.
func (h *handler) error420(s *scratch, unknown []uint16) []byte {
	startResponse(s, stun.BindingError)
	const reasonPhrase = "Unknown Attribute"
	v := s.attr[:0]
	v = append(v, 0, 0, 4, 20)
	v = append(v, reasonPhrase...)
	s.out.Add(stun.AttrErrorCode, v)
	for i, t := range unknown {
		binary.BigEndian.PutUint16(s.list[2*i:], t)
	}
	s.out.Add(stun.AttrUnknownAttributes, s.list[:2*len(unknown)])

	return addFingerprint(s)
}

// classic answers an RFC 3489 Binding request: MAPPED-ADDRESS only, the
// 16-byte transaction ID echoed (RFC 5389 §12.2). No SOFTWARE, no
// FINGERPRINT: those clients predate them, and the answer stays small.
func (h *handler) classic(s *scratch, b []byte, src netip.AddrPort) []byte {
	s.out.Reset()
	s.out.Raw = append(s.out.Raw[:0], b[:headerSize]...)
	binary.BigEndian.PutUint16(s.out.Raw[0:2], 0x0101)
	s.out.Length = 0
	s.out.WriteLength()
	addPlainAddress(s, stun.AttrMappedAddress, src)

	return s.out.Raw
}

// classicChangeRequest reads the attributes of a classic RFC 3489
// request and reports whether its CHANGE-REQUEST (§11.2.4) asks for
// another address or port, or is not the 4 bytes it must be. RFC 3489
// attributes are multiples of 4 bytes long; one that is not is taken as
// padded, as RFC 5389 pads. ok is false when an attribute overruns the
// message.
func classicChangeRequest(b []byte) (change, ok bool) {
	for p := b[headerSize:]; len(p) > 0; {
		if len(p) < 4 {
			return false, false
		}
		t, n := binary.BigEndian.Uint16(p[0:2]), int(binary.BigEndian.Uint16(p[2:4]))
		p = p[4:]
		if n > len(p) {
			return false, false
		}
		if t == attrChangeReq && (n != 4 || binary.BigEndian.Uint32(p[:4])&0x6 != 0) {
			change = true
		}
		p = p[min((n+3)&^3, len(p)):]
	}

	return change, true
}

// classicError420 refuses a classic request whose CHANGE-REQUEST asks for
// another address or port, which a server with one address cannot honour.
// A success from the same address would make the client conclude its NAT
// lets anything in (RFC 3489 §10.1, test II); a Binding Error Response
// (0x0111) is never taken for that. It is a 420 naming CHANGE-REQUEST, as
// RFC 5780 §6.1 has a server without an alternate address answer, laid
// out as RFC 3489 wants: the reason phrase padded with spaces to a
// multiple of 4 bytes (§11.2.9) and the one unknown attribute repeated to
// fill 4 bytes (§11.2.10). No SOFTWARE, no FINGERPRINT.
func classicError420(s *scratch, b []byte) []byte {
	const reasonPhrase = "Unknown Attribute   "
	s.out.Reset()
	raw := append(s.out.Raw[:0], b[:headerSize]...)
	binary.BigEndian.PutUint16(raw[0:2], 0x0111)
	raw = append(raw, 0x00, 0x09, 0, byte(4+len(reasonPhrase)), 0, 0, 4, 20)
	raw = append(raw, reasonPhrase...)
	raw = append(raw, 0x00, 0x0A, 0, 4, 0, attrChangeReq, 0, attrChangeReq)
	binary.BigEndian.PutUint16(raw[2:4], uint16(len(raw)-headerSize)) //nolint:gosec // 36 bytes
	s.out.Raw = raw

	return raw
}

// addXORAddress appends an XOR-MAPPED-ADDRESS style attribute for addr
// without allocating.
func addXORAddress(s *scratch, t stun.AttrType, addr netip.AddrPort) {
	v := encodeAddress(s.attr[:0], addr)
	binary.BigEndian.PutUint16(v[2:4], addr.Port()^(magicCookie>>16))
	var key [16]byte
	binary.BigEndian.PutUint32(key[0:4], magicCookie)
	copy(key[4:], s.out.TransactionID[:])
	for i := 4; i < len(v); i++ {
		v[i] ^= key[i-4]
	}
	s.out.Add(t, v)
}

// addPlainAddress appends a MAPPED-ADDRESS style attribute for addr.
func addPlainAddress(s *scratch, t stun.AttrType, addr netip.AddrPort) {
	s.out.Add(t, encodeAddress(s.attr[:0], addr))
}

// encodeAddress appends the family, port and address of addr in the
// MAPPED-ADDRESS layout; IPv4-mapped IPv6 addresses are sent as IPv4.
func encodeAddress(v []byte, addr netip.AddrPort) []byte {
	ip := addr.Addr().Unmap()
	family := byte(1)
	if ip.Is6() {
		family = 2
	}
	v = append(v, 0, family, byte(addr.Port()>>8), byte(addr.Port()))
	if ip.Is4() {
		a := ip.As4()

		return append(v, a[:]...)
	}
	a := ip.As16()

	return append(v, a[:]...)
}
