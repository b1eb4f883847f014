package server

import (
	"errors"
	"net/netip"

	"github.com/stund/stund/internal/wire"
)

const (
	// headerSize is the STUN header, the least a message can be; the TCP
	// framing and the MaxMessageSize check read it.
	headerSize = wire.HeaderSize

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

// scratch is the reusable state of one worker: the decoded request, the
// buffer the response is written to and the list of unknown attributes.
// Its decoded message indexes up to wire.MaxAttributes attributes, about
// 2 KB, so a worker keeps one rather than one per message.
type scratch struct {
	in      wire.Message
	out     responseBuffer
	unknown [maxUnknownListed]wire.AttrType
}

// responseBuffer is where handle writes the next response, from the start
// of Raw and within its capacity when it suffices. A transport that sends
// from its own buffers points Raw at the next one before each call.
type responseBuffer struct {
	Raw []byte
}

func newScratch() *scratch {
	s := &scratch{}
	s.out.Raw = make([]byte, 0, 576)

	return s
}

// result is what handle reports to the transport for counting.
type result struct {
	outcome outcome
	reason  reason
	binding bool // a well-formed Binding request (classic ones included)
}

// handle applies the receive rules of RFC 8489 §6.3 to the message msg that
// arrived from src. When the message is to be answered it returns the
// response, which aliases s and is valid until the next call.
func (h *handler) handle(s *scratch, msg []byte, src netip.AddrPort) ([]byte, result) {
	if !answerable(src) {
		return nil, discard(reasonBadSource)
	}
	hdr, err := wire.ParseHeader(msg)
	if err == nil && hdr.Size() != len(msg) {
		err = wire.ErrBadLength
	}
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrShort):
			return nil, discard(reasonShort)
		case errors.Is(err, wire.ErrNotSTUN):
			return nil, discard(reasonNotSTUN)
		default:
			return nil, discard(reasonBadLength)
		}
	}
	if hdr.Classic() {
		return h.handleClassic(s, msg, hdr, src)
	}

	if err := s.in.Decode(msg); err != nil {
		return nil, discard(reasonMalformed)
	}
	switch s.in.Type().Class() {
	case wire.ClassIndication:
		return nil, discard(reasonIndication)
	case wire.ClassSuccess, wire.ClassError:
		return nil, discard(reasonResponse)
	}
	if s.in.Type().Method() != wire.MethodBinding {
		return nil, discard(reasonUnsupportedMethod)
	}
	// FINGERPRINT is optional, a server MUST NOT require it; when present
	// it must be last and match.
	if s.in.CheckFingerprint() != nil {
		return nil, discard(reasonBadFingerprint)
	}

	if unknown := h.unknownRequired(s); len(unknown) > 0 {
		b := wire.NewBuilder(s.out.Raw[:0], wire.BindingError, s.in.TransactionID())
		error420(&b, unknown)

		return respond(s, &b, outcomeError420)
	}
	b := wire.NewBuilder(s.out.Raw[:0], wire.BindingSuccess, s.in.TransactionID())
	h.success(&b, src)

	return respond(s, &b, outcomeSuccess)
}

// handleClassic handles a message without the magic cookie: an RFC 3489
// Binding request is answered when RFC3489 is on, anything else is not
// STUN this server speaks.
func (h *handler) handleClassic(s *scratch, msg []byte, hdr wire.Header, src netip.AddrPort) ([]byte, result) {
	if hdr.Type != wire.BindingRequest {
		return nil, discard(reasonBadCookie)
	}
	if !h.rfc3489 {
		return nil, discard(reasonRFC3489Disabled)
	}
	if err := s.in.DecodeAllowClassic(msg); err != nil {
		return nil, discard(reasonMalformed)
	}
	id := s.in.ClassicTransactionID()
	if classicChangeRequest(&s.in) {
		b := wire.NewClassicBuilder(s.out.Raw[:0], wire.BindingError, id)
		classicError420(&b)

		return respond(s, &b, outcomeError420)
	}
	// MAPPED-ADDRESS only, the 16-byte transaction ID echoed (RFC 5389
	// §12.2). No SOFTWARE, no FINGERPRINT: those clients predate them, and
	// the answer stays small.
	b := wire.NewClassicBuilder(s.out.Raw[:0], wire.BindingSuccess, id)
	b.AddAddress(wire.AttrMappedAddress, src)

	return respond(s, &b, outcomeSuccess)
}

// respond finishes the response in b, keeping its buffer for the next
// one. Responses are written in the scratch's buffer, s.out.Raw. One that
// cannot be encoded, which the configuration New checks rules out, is not
// sent.
func respond(s *scratch, b *wire.Builder, o outcome) ([]byte, result) {
	resp, err := b.Finish()
	if err != nil {
		return nil, discard(reasonMalformed)
	}
	s.out.Raw = resp

	return resp, result{outcome: o, binding: true}
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

// understood reports whether a Binding request may carry the
// comprehension-required attribute t without being refused. A basic
// server does not authenticate, so credentials are accepted and ignored
// (RFC 5389 §13); ICE's PRIORITY and USE-CANDIDATE are harmless.
// CHANGE-REQUEST is judged by its value, in unknownRequired.
func understood(t wire.AttrType) bool {
	switch t {
	case wire.AttrMappedAddress, wire.AttrUsername, wire.AttrMessageIntegrity,
		wire.AttrErrorCode, wire.AttrUnknownAttributes, wire.AttrRealm, wire.AttrNonce,
		wire.AttrMessageIntegritySHA256, wire.AttrPasswordAlgorithm, wire.AttrUserhash,
		wire.AttrXORMappedAddress, wire.AttrPriority, wire.AttrUseCandidate:
		return true
	}

	return false
}

// asksForChange reports whether a CHANGE-REQUEST value asks for another
// address or port, which a single-address server cannot honour (RFC 5780
// §6.1), or is not the 4 bytes it must be.
func asksForChange(v []byte) bool {
	f, err := wire.ParseChangeRequest(v)

	return err != nil || f&(wire.ChangeIP|wire.ChangePort) != 0
}

// unknownRequired lists the comprehension-required attributes the request
// carries that this server does not understand, plus CHANGE-REQUEST when it
// asks for a change of address or port, at most maxUnknownListed of them.
func (h *handler) unknownRequired(s *scratch) []wire.AttrType {
	n := 0
	for i := range s.in.Len() {
		a := s.in.Attr(i)
		if !a.Type.Required() || understood(a.Type) {
			continue
		}
		if a.Type == wire.AttrChangeRequest && !asksForChange(a.Value) {
			continue
		}
		if n < len(s.unknown) && !contains(s.unknown[:n], a.Type) {
			s.unknown[n] = a.Type
			n++
		}
	}

	return s.unknown[:n]
}

func contains(list []wire.AttrType, t wire.AttrType) bool {
	for _, v := range list {
		if v == t {
			return true
		}
	}

	return false
}

// success writes the attributes of a Binding success response:
// XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN when one is configured for src's
// family, SOFTWARE when configured, and FINGERPRINT last.
func (h *handler) success(b *wire.Builder, src netip.AddrPort) {
	b.AddXORAddress(wire.AttrXORMappedAddress, src)
	if o := h.origin(src); o.IsValid() {
		b.AddAddress(wire.AttrResponseOrigin, o)
	}
	if len(h.software) > 0 {
		b.Add(wire.AttrSoftware, h.software)
	}
	b.AddFingerprint()
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

// error420 writes the attributes of the answer to unknown
// comprehension-required attributes. It carries no SOFTWARE: whoever sent
// them is not a client worth greeting, and without it the answer to the
// smallest such request (24 bytes) is 64 bytes, at most 2.7 times its
// size.
func error420(b *wire.Builder, unknown []wire.AttrType) {
	b.AddErrorCode(420, "Unknown Attribute")
	b.AddUnknownAttributes(unknown)
	b.AddFingerprint()
}

// classicChangeRequest reports whether a classic RFC 3489 request carries
// a CHANGE-REQUEST (§11.2.4) that asks for another address or port, or is
// not the 4 bytes it must be.
func classicChangeRequest(m *wire.Message) bool {
	for i := range m.Len() {
		if a := m.Attr(i); a.Type == wire.AttrChangeRequest && asksForChange(a.Value) {
			return true
		}
	}

	return false
}

// classicUnknown is UNKNOWN-ATTRIBUTES of classicError420: CHANGE-REQUEST,
// repeated to fill 4 bytes as RFC 3489 §11.2.10 wants.
var classicUnknown = [2]wire.AttrType{wire.AttrChangeRequest, wire.AttrChangeRequest}

// classicError420 writes the attributes of the answer that refuses a
// classic request whose CHANGE-REQUEST asks for another address or port,
// which a server with one address cannot honour.
// A success from the same address would make the client conclude its NAT
// lets anything in (RFC 3489 §10.1, test II); a Binding Error Response
// (0x0111) is never taken for that. It is a 420 naming CHANGE-REQUEST, as
// RFC 5780 §6.1 has a server without an alternate address answer, laid
// out as RFC 3489 wants: the reason phrase padded with spaces to a
// multiple of 4 bytes (§11.2.9) and the one unknown attribute repeated to
// fill 4 bytes (§11.2.10). No SOFTWARE, no FINGERPRINT.
func classicError420(b *wire.Builder) {
	b.AddErrorCode(420, "Unknown Attribute   ")
	b.AddUnknownAttributes(classicUnknown[:])
}
