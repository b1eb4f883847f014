package wire

import (
	"encoding/binary"
	"net/netip"
)

// maxLength is the largest value of a 16-bit length field.
const maxLength = 0xFFFF

// zeros pads attribute values.
var zeros [3]byte

// Builder appends one STUN message to a byte slice. It writes the header
// first and keeps its length right after every attribute, so the bytes
// are a valid message at any point. Attribute values are padded with
// zeros, never with what the buffer held before.
//
// A Builder remembers the first error (a value too long, an address that
// is not an IP, an attribute after FINGERPRINT); later calls do nothing and
// Finish reports it. It allocates only when the slice given to NewBuilder
// lacks the capacity for the message.
type Builder struct {
	buf   []byte
	start int // offset of the message in buf
	err   error
	done  bool // FINGERPRINT added
}

// NewBuilder starts a message of type t with transaction ID id at the end
// of dst.
func NewBuilder(dst []byte, t MessageType, id TransactionID) Builder {
	b := Builder{buf: dst, start: len(dst)}
	if t&0xC000 != 0 {
		b.err = ErrBadType
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(t))
	b.buf = append(b.buf, 0, 0)
	b.buf = binary.BigEndian.AppendUint32(b.buf, MagicCookie)
	b.buf = append(b.buf, id[:]...)

	return b
}

// NewClassicBuilder starts an RFC 3489 message of type t: its 16-byte
// transaction ID id takes the place of the magic cookie, as in a response
// to a classic request.
func NewClassicBuilder(dst []byte, t MessageType, id [ClassicTransactionIDSize]byte) Builder {
	b := Builder{buf: dst, start: len(dst)}
	if t&0xC000 != 0 {
		b.err = ErrBadType
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(t))
	b.buf = append(b.buf, 0, 0)
	b.buf = append(b.buf, id[:]...)

	return b
}

// Finish returns dst with the message appended, or the first error.
func (b *Builder) Finish() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}

	return b.buf, nil
}

// begin starts an attribute of type t with a value of n bytes, reporting
// whether it may be written.
func (b *Builder) begin(t AttrType, n int) bool {
	if b.err != nil {
		return false
	}
	if b.done {
		b.err = ErrAfterFingerprint

		return false
	}
	if n > maxLength || b.length()+AttrHeaderSize+padded(n) > maxLength {
		b.err = ErrTooLong

		return false
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(t))
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(n)) //nolint:gosec // checked above

	return true
}

// end pads the attribute just written, whose value is n bytes, and
// updates the header's length.
func (b *Builder) end(n int) {
	b.buf = append(b.buf, zeros[:padded(n)-n]...)
	b.setLength(b.length())
}

// length returns the number of attribute bytes written so far.
func (b *Builder) length() int { return len(b.buf) - b.start - HeaderSize }

func (b *Builder) setLength(n int) {
	binary.BigEndian.PutUint16(b.buf[b.start+2:], uint16(n)) //nolint:gosec // at most maxLength
}

// Add appends an attribute of type t with value v.
func (b *Builder) Add(t AttrType, v []byte) {
	if b.begin(t, len(v)) {
		b.buf = append(b.buf, v...)
		b.end(len(v))
	}
}

// AddString appends an attribute of type t with value s, for the text
// attributes: SOFTWARE, USERNAME, REALM, NONCE.
func (b *Builder) AddString(t AttrType, s string) {
	if b.begin(t, len(s)) {
		b.buf = append(b.buf, s...)
		b.end(len(s))
	}
}

// AddAddress appends a plain address attribute of type t
// (MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, CHANGED-ADDRESS) holding
// addr. An IPv4-mapped IPv6 address is sent as IPv4, family 1; the zone is
// dropped. ErrInvalidAddress if addr has no valid IP.
func (b *Builder) AddAddress(t AttrType, addr netip.AddrPort) {
	b.addAddress(t, addr, false)
}

// AddXORAddress appends an attribute of type t (XOR-MAPPED-ADDRESS)
// holding addr XORed with the magic cookie and the message's transaction
// ID, as RFC 8489 §14.2 describes. Addresses are treated as by AddAddress.
func (b *Builder) AddXORAddress(t AttrType, addr netip.AddrPort) {
	b.addAddress(t, addr, true)
}

func (b *Builder) addAddress(t AttrType, addr netip.AddrPort, xor bool) {
	ip := addr.Addr().Unmap()
	if !ip.IsValid() {
		if b.err == nil {
			b.err = ErrInvalidAddress
		}

		return
	}
	family, size := byte(familyIPv4), 4
	if ip.Is6() {
		family, size = familyIPv6, 16
	}
	if !b.begin(t, 4+size) {
		return
	}
	port := addr.Port()
	if xor {
		port ^= uint16(MagicCookie >> 16)
	}
	b.buf = append(b.buf, 0, family)
	b.buf = binary.BigEndian.AppendUint16(b.buf, port)
	at := len(b.buf)
	if size == 4 {
		a := ip.As4()
		b.buf = append(b.buf, a[:]...)
	} else {
		a := ip.As16()
		b.buf = append(b.buf, a[:]...)
	}
	if xor {
		// The key is the magic cookie then the transaction ID: bytes 4 to
		// 20 of the header.
		v, key := b.buf[at:], b.buf[b.start+4:b.start+HeaderSize]
		var cookie [4]byte
		binary.BigEndian.PutUint32(cookie[:], MagicCookie)
		for i := range v {
			if i < 4 {
				v[i] ^= cookie[i]
			} else {
				v[i] ^= key[i]
			}
		}
	}
	b.end(4 + size)
}

// AddErrorCode appends ERROR-CODE with code (300-699, else
// ErrBadErrorCode) and reason. The reason is sent as given: RFC 3489
// receivers want it padded with spaces to a multiple of 4 bytes, which is
// the caller's choice.
func (b *Builder) AddErrorCode(code int, reason string) {
	if code < 300 || code > 699 {
		if b.err == nil {
			b.err = ErrBadErrorCode
		}

		return
	}
	if b.begin(AttrErrorCode, 4+len(reason)) {
		b.buf = append(b.buf, 0, 0, byte(code/100), byte(code%100))
		b.buf = append(b.buf, reason...)
		b.end(4 + len(reason))
	}
}

// AddUnknownAttributes appends UNKNOWN-ATTRIBUTES listing types in the
// order given. An RFC 3489 receiver wants an even number of them, which
// the caller ensures by repeating one.
func (b *Builder) AddUnknownAttributes(types []AttrType) {
	if b.begin(AttrUnknownAttributes, 2*len(types)) {
		for _, t := range types {
			b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(t))
		}
		b.end(2 * len(types))
	}
}

// AddChangeRequest appends CHANGE-REQUEST with flags f.
func (b *Builder) AddChangeRequest(f ChangeFlags) {
	if b.begin(AttrChangeRequest, 4) {
		b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(f))
		b.end(4)
	}
}

// AddFingerprint appends FINGERPRINT: the CRC-32 of the message before
// it, with the length already counting FINGERPRINT, XOR FingerprintXOR.
// Nothing may be added after it.
func (b *Builder) AddFingerprint() {
	if !b.begin(AttrFingerprint, 4) {
		return
	}
	b.done = true
	at := len(b.buf) - AttrHeaderSize
	b.setLength(b.length() + 4)
	b.buf = binary.BigEndian.AppendUint32(b.buf, Fingerprint(b.buf[b.start:at]))
}
