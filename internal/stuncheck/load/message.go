package load

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

const (
	headerSize     = 20
	requestSize    = headerSize // a Binding request with no attributes
	magicCookie    = 0x2112A442
	bindingRequest = 0x0001
	bindingSuccess = 0x0101
	bindingError   = 0x0111
	attrXORMapped  = 0x0020
	attrFinger     = 0x8028
	fingerprintXOR = 0x5354554e
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

// putRequest writes a Binding request with the given transaction ID parts
// into b (requestSize bytes).
func putRequest(b []byte, salt uint32, slot uint32, seq uint32) {
	_ = b[requestSize-1]
	binary.BigEndian.PutUint16(b[0:], bindingRequest)
	binary.BigEndian.PutUint16(b[2:], 0)
	binary.BigEndian.PutUint32(b[4:], magicCookie)
	binary.BigEndian.PutUint32(b[8:], salt)
	binary.BigEndian.PutUint32(b[12:], slot)
	binary.BigEndian.PutUint32(b[16:], seq)
}

// parsed is what validation needs from a response.
type parsed struct {
	typ    uint16
	salt   uint32
	slot   uint32
	seq    uint32
	mapped netip.AddrPort // XOR-MAPPED-ADDRESS, if valid
}

// parseResponse checks the framing of one STUN message (exactly b) and
// extracts its type, transaction ID and XOR-MAPPED-ADDRESS. It returns
// ReasonMalformed or ReasonBadFingerprint, or -1 when the message is sound.
func parseResponse(b []byte, p *parsed) Reason {
	if len(b) < headerSize || b[0]&0xC0 != 0 ||
		binary.BigEndian.Uint32(b[4:]) != magicCookie {
		return ReasonMalformed
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n%4 != 0 || headerSize+n != len(b) {
		return ReasonMalformed
	}
	p.typ = binary.BigEndian.Uint16(b[0:])
	if p.typ != bindingSuccess && p.typ != bindingError {
		return ReasonMalformed
	}
	p.salt = binary.BigEndian.Uint32(b[8:])
	p.slot = binary.BigEndian.Uint32(b[12:])
	p.seq = binary.BigEndian.Uint32(b[16:])
	p.mapped = netip.AddrPort{}
	xorAt := -1
	for off := headerSize; off < len(b); {
		if len(b)-off < 4 {
			return ReasonMalformed
		}
		t := binary.BigEndian.Uint16(b[off:])
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		end := off + 4 + l
		if end > len(b) {
			return ReasonMalformed
		}
		switch t {
		case attrXORMapped:
			if xorAt < 0 {
				xorAt = off
			}
		case attrFinger:
			// FINGERPRINT is last and covers everything before it.
			if l != 4 || end != len(b) {
				return ReasonMalformed
			}
			if crc32.ChecksumIEEE(b[:off])^fingerprintXOR != binary.BigEndian.Uint32(b[off+4:]) {
				return ReasonBadFingerprint
			}
		}
		off += 4 + (l+3)&^3
	}
	if xorAt >= 0 {
		p.mapped = xorMapped(b, xorAt)
	}

	return -1
}

// xorMapped decodes the XOR-MAPPED-ADDRESS attribute at off, or returns
// the zero AddrPort when it is malformed.
func xorMapped(b []byte, off int) netip.AddrPort {
	l := int(binary.BigEndian.Uint16(b[off+2:]))
	v := b[off+4 : off+4+l]
	if len(v) < 4 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(v[2:]) ^ uint16(magicCookie>>16)
	switch {
	case v[1] == 1 && len(v) == 8:
		x := binary.BigEndian.Uint32(v[4:]) ^ magicCookie
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], x)

		return netip.AddrPortFrom(netip.AddrFrom4(a), port)
	case v[1] == 2 && len(v) == 20:
		var a [16]byte
		copy(a[:], v[4:20])
		// The key is the magic cookie then the transaction ID, which are
		// bytes 4 to 20 of the header.
		for i := range a {
			a[i] ^= b[4+i]
		}

		return netip.AddrPortFrom(netip.AddrFrom16(a), port)
	}

	return netip.AddrPort{}
}
