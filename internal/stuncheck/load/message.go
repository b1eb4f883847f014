package load

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/stund/stund/internal/wire"
)

// Reason says why a response was invalid.
type Reason int

// Reasons a response is counted invalid. The first three leave the request
// waiting for a proper answer (the packet cannot be trusted to belong to
// it); the others answer the request, wrongly.
const (
	// ReasonMalformed: not a well-formed STUN Binding response (bad header,
	// length, attribute layout, or a message class other than a response).
	ReasonMalformed Reason = iota
	// ReasonBadFingerprint: FINGERPRINT present and wrong.
	ReasonBadFingerprint
	// ReasonUnknownTransaction: a transaction ID this generator never sent.
	ReasonUnknownTransaction
	// ReasonErrorResponse: a Binding error response.
	ReasonErrorResponse
	// ReasonNoMappedAddress: a success response without a usable
	// XOR-MAPPED-ADDRESS.
	ReasonNoMappedAddress
	// ReasonWrongMappedAddress: XOR-MAPPED-ADDRESS differs from the
	// expected address (see MappedCheck).
	ReasonWrongMappedAddress
	numReasons
)

var reasonNames = [numReasons]string{
	"malformed", "bad_fingerprint", "unknown_transaction",
	"error_response", "no_mapped_address", "wrong_mapped_address",
}

// String returns the reason's name as used in JSON output.
func (r Reason) String() string {
	if r < 0 || r >= numReasons {
		return "unknown"
	}

	return reasonNames[r]
}

// A request is the shape of every request of a run: a Binding request
// built once with a zero transaction ID, which put copies.
type request struct {
	raw []byte
	// fingerprint: the last attribute is FINGERPRINT, recomputed per
	// request over everything before it.
	fingerprint bool
}

// newRequest builds the request of the given shape.
func newRequest(shape RequestShape) request {
	b := wire.NewBuilder(make([]byte, 0, shape.size()), wire.BindingRequest, wire.TransactionID{})
	if shape == RequestFingerprint {
		b.AddFingerprint()
	}
	raw, _ := b.Finish() // a Binding request with at most FINGERPRINT always encodes

	return request{raw: raw, fingerprint: shape == RequestFingerprint}
}

// size is the request's length in bytes.
func (q *request) size() int { return len(q.raw) }

// put writes the request with the given transaction ID parts into b
// (q.size() bytes): a copy of the prebuilt request with its transaction
// ID, the last bytes of the header, filled in, and FINGERPRINT, if any,
// computed for that ID. Copying a request built once costs a fifth of
// building each one with a wire.Builder.
func (q *request) put(b []byte, salt uint32, slot uint32, seq uint32) {
	n := copy(b[:len(q.raw)], q.raw)
	tid := b[wire.HeaderSize-wire.TransactionIDSize : wire.HeaderSize]
	binary.BigEndian.PutUint32(tid[0:], salt)
	binary.BigEndian.PutUint32(tid[4:], slot)
	binary.BigEndian.PutUint32(tid[8:], seq)
	if q.fingerprint {
		// RFC 8489 §14.7: the CRC-32 of the message up to the attribute,
		// with the header's length already counting it, XOR 0x5354554e.
		binary.BigEndian.PutUint32(b[n-4:n], wire.Fingerprint(b[:n-wire.FingerprintSize]))
	}
}

// parsed is what validation needs from a response.
type parsed struct {
	typ    wire.MessageType
	salt   uint32
	slot   uint32
	seq    uint32
	mapped netip.AddrPort // XOR-MAPPED-ADDRESS, if valid
}

// parseResponse decodes one STUN message (exactly b) into m and extracts
// its type, transaction ID and XOR-MAPPED-ADDRESS. It returns
// ReasonMalformed (bad header or attribute layout, not a Binding response,
// FINGERPRINT not last or not 4 bytes) or ReasonBadFingerprint (FINGERPRINT
// not matching), or -1 when the message is sound.
func parseResponse(m *wire.Message, b []byte, p *parsed) Reason {
	if m.Decode(b) != nil {
		return ReasonMalformed
	}
	p.typ = m.Type()
	if p.typ != wire.BindingSuccess && p.typ != wire.BindingError {
		return ReasonMalformed
	}
	tid := m.TransactionID()
	p.salt = binary.BigEndian.Uint32(tid[0:])
	p.slot = binary.BigEndian.Uint32(tid[4:])
	p.seq = binary.BigEndian.Uint32(tid[8:])
	switch err := m.CheckFingerprint(); {
	case errors.Is(err, wire.ErrFingerprintMalformed):
		return ReasonMalformed
	case err != nil:
		return ReasonBadFingerprint
	}
	// The zero AddrPort when absent or malformed.
	p.mapped, _ = m.XORAddress(wire.AttrXORMappedAddress)

	return -1
}
