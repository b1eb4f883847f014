package wire

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// attrRef locates one attribute: its type and the offset of its header
// from the end of the message header.
type attrRef struct {
	typ AttrType
	off uint16
}

// Attribute is one attribute of a decoded message. Value aliases the
// decoded buffer and excludes padding.
type Attribute struct {
	Type  AttrType
	Value []byte
}

// Message is a decoded STUN message: a view over the caller's buffer with
// an index of its attributes. The zero value is an empty message, ready
// for Decode; decoding again reuses it without allocating. A Message must
// not be used after its buffer is changed. Its index makes it about 2 KB,
// so a hot path keeps one per worker.
type Message struct {
	raw   []byte
	typ   MessageType
	n     int
	attrs [MaxAttributes]attrRef
}

// Reset empties m, dropping its reference to the last buffer decoded.
func (m *Message) Reset() {
	m.raw = nil
	m.typ = 0
	m.n = 0
}

// Decode decodes b, which must hold exactly one RFC 5389/8489 message. It
// checks, in the order of RFC 8489 §6.3: the size (ErrShort), the first two
// bits (ErrNotSTUN), the length (ErrBadLength), the magic cookie
// (ErrBadCookie), then that the attributes tile the message
// (ErrMalformed) and number at most MaxAttributes (ErrTooManyAttributes).
// It does not check FINGERPRINT; see CheckFingerprint. On error m is
// empty. m refers to b until the next Decode or Reset.
func (m *Message) Decode(b []byte) error { return m.decode(b, false) }

// DecodeAllowClassic is Decode for a receiver that also takes RFC 3489
// messages: a message without the magic cookie is decoded the same way
// instead of failing with ErrBadCookie. Classic reports which it was.
func (m *Message) DecodeAllowClassic(b []byte) error { return m.decode(b, true) }

func (m *Message) decode(b []byte, classic bool) error {
	m.Reset()
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Size() != len(b) {
		return ErrBadLength
	}
	if h.Classic() && !classic {
		return ErrBadCookie
	}
	// The attribute area is a multiple of 4 bytes and every attribute
	// starts at a multiple of 4, so there is always room for a header.
	attrs := b[HeaderSize:]
	n := 0
	for off := 0; off < len(attrs); {
		l := int(binary.BigEndian.Uint16(attrs[off+2:]))
		next := off + AttrHeaderSize + padded(l)
		if next > len(attrs) {
			return ErrMalformed
		}
		if n == MaxAttributes {
			return ErrTooManyAttributes
		}
		m.attrs[n] = attrRef{typ: AttrType(binary.BigEndian.Uint16(attrs[off:])), off: uint16(off)} //nolint:gosec // off < 65536
		n++
		off = next
	}
	m.raw, m.typ, m.n = b, h.Type, n

	return nil
}

// padded rounds an attribute value length up to a multiple of 4.
func padded(n int) int { return (n + 3) &^ 3 }

// Raw returns the decoded message's bytes.
func (m *Message) Raw() []byte { return m.raw }

// Type returns the message type.
func (m *Message) Type() MessageType { return m.typ }

// Classic reports whether the message is an RFC 3489 one: no magic
// cookie. Only DecodeAllowClassic accepts those.
func (m *Message) Classic() bool {
	return len(m.raw) >= HeaderSize && binary.BigEndian.Uint32(m.raw[4:8]) != MagicCookie
}

// TransactionID returns the RFC 8489 transaction ID, bytes 8 to 20.
func (m *Message) TransactionID() TransactionID {
	var id TransactionID
	if len(m.raw) >= HeaderSize {
		copy(id[:], m.raw[8:HeaderSize])
	}

	return id
}

// ClassicTransactionID returns bytes 4 to 20, the transaction ID of an
// RFC 3489 message, which a response to it echoes.
func (m *Message) ClassicTransactionID() [ClassicTransactionIDSize]byte {
	var id [ClassicTransactionIDSize]byte
	if len(m.raw) >= HeaderSize {
		copy(id[:], m.raw[4:HeaderSize])
	}

	return id
}

// Len returns the number of attributes.
func (m *Message) Len() int { return m.n }

// Attr returns the i-th attribute, in message order. It panics unless
// 0 <= i < Len().
func (m *Message) Attr(i int) Attribute {
	if i < 0 || i >= m.n {
		panic("wire: attribute index out of range")
	}

	return Attribute{Type: m.attrs[i].typ, Value: m.value(i)}
}

// value returns the value of the i-th attribute, without padding and
// with its capacity cut to its length.
func (m *Message) value(i int) []byte {
	off := HeaderSize + int(m.attrs[i].off)
	l := int(binary.BigEndian.Uint16(m.raw[off+2:]))
	start := off + AttrHeaderSize

	return m.raw[start : start+l : start+l]
}

// index returns the position of the first attribute of type t, or -1.
func (m *Message) index(t AttrType) int {
	for i := range m.n {
		if m.attrs[i].typ == t {
			return i
		}
	}

	return -1
}

// Has reports whether the message carries an attribute of type t.
func (m *Message) Has(t AttrType) bool { return m.index(t) >= 0 }

// Get returns the value of the first attribute of type t, and whether
// there is one. The value aliases the decoded buffer.
func (m *Message) Get(t AttrType) ([]byte, bool) {
	i := m.index(t)
	if i < 0 {
		return nil, false
	}

	return m.value(i), true
}

// CheckFingerprint checks FINGERPRINT when the message carries one: it
// must be the last attribute and 4 bytes long (else
// ErrFingerprintMalformed) and equal the CRC-32 of the message before it
// XOR FingerprintXOR (else ErrBadFingerprint). A message without
// FINGERPRINT passes: RFC 8489 lets a receiver require it only by usage.
func (m *Message) CheckFingerprint() error {
	i := m.index(AttrFingerprint)
	if i < 0 {
		return nil
	}
	v := m.value(i)
	if i != m.n-1 || len(v) != 4 {
		return ErrFingerprintMalformed
	}
	if Fingerprint(m.raw[:HeaderSize+int(m.attrs[i].off)]) != binary.BigEndian.Uint32(v) {
		return ErrBadFingerprint
	}

	return nil
}

// Fingerprint returns FINGERPRINT's value for a message whose bytes before
// the attribute are b (the header's length already counting it).
func Fingerprint(b []byte) uint32 { return crc32.ChecksumIEEE(b) ^ FingerprintXOR }

// Address decodes the first attribute of type t as a plain address in the
// MAPPED-ADDRESS layout (RFC 8489 §14.1), as MAPPED-ADDRESS,
// RESPONSE-ORIGIN, OTHER-ADDRESS and CHANGED-ADDRESS are. The value must be
// exactly 8 bytes with family 1 (IPv4) or 20 bytes with family 2 (IPv6):
// otherwise ErrAddressFamily or ErrAddressLength, never an address cut
// short or padded. The reserved first byte is ignored. An IPv6 value is
// returned as sent, even an IPv4-mapped one. ErrNoAttribute when absent.
func (m *Message) Address(t AttrType) (netip.AddrPort, error) {
	v, ok := m.Get(t)
	if !ok {
		return netip.AddrPort{}, ErrNoAttribute
	}

	return decodeAddress(v, nil)
}

// XORAddress decodes the first attribute of type t as an XOR-MAPPED-ADDRESS
// (RFC 8489 §14.2): port XOR the top half of the magic cookie, address XOR
// the magic cookie and, for IPv6, the transaction ID. It is as strict as
// Address.
func (m *Message) XORAddress(t AttrType) (netip.AddrPort, error) {
	v, ok := m.Get(t)
	if !ok {
		return netip.AddrPort{}, ErrNoAttribute
	}
	var key [4 + TransactionIDSize]byte
	binary.BigEndian.PutUint32(key[:4], MagicCookie)
	copy(key[4:], m.raw[8:HeaderSize])

	return decodeAddress(v, &key)
}

// decodeAddress decodes an address value, XORed with key when key is not
// nil.
func decodeAddress(v []byte, key *[4 + TransactionIDSize]byte) (netip.AddrPort, error) {
	if len(v) < 4 {
		return netip.AddrPort{}, ErrAddressLength
	}
	var size int
	switch v[1] {
	case familyIPv4:
		size = 4
	case familyIPv6:
		size = 16
	default:
		return netip.AddrPort{}, ErrAddressFamily
	}
	if len(v) != 4+size {
		return netip.AddrPort{}, ErrAddressLength
	}
	port := binary.BigEndian.Uint16(v[2:4])
	var ip [16]byte
	copy(ip[:], v[4:])
	if key != nil {
		port ^= uint16(MagicCookie >> 16)
		for i := range size {
			ip[i] ^= key[i]
		}
	}
	if size == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[:4])), port), nil
	}

	return netip.AddrPortFrom(netip.AddrFrom16(ip), port), nil
}

// Address families of the address attributes (RFC 8489 §14.1).
const (
	familyIPv4 = 0x01
	familyIPv6 = 0x02
)

// ErrorCode decodes ERROR-CODE (RFC 8489 §14.8): the code, class * 100 +
// number, and the reason phrase as sent, aliasing the decoded buffer. The
// value must hold at least the 4 bytes before the reason
// (ErrBadAttribute); the reserved bits are ignored and the code is not
// range-checked. ErrNoAttribute when absent.
func (m *Message) ErrorCode() (code int, reason []byte, err error) {
	v, ok := m.Get(AttrErrorCode)
	if !ok {
		return 0, nil, ErrNoAttribute
	}
	if len(v) < 4 {
		return 0, nil, ErrBadAttribute
	}

	return int(v[2]&0x7)*100 + int(v[3]), v[4:], nil
}

// UnknownAttributes appends to dst the types listed by the first
// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9), whose value must be a whole number
// of 2-byte types (ErrBadAttribute). ErrNoAttribute when absent.
func (m *Message) UnknownAttributes(dst []AttrType) ([]AttrType, error) {
	v, ok := m.Get(AttrUnknownAttributes)
	if !ok {
		return dst, ErrNoAttribute
	}
	if len(v)%2 != 0 {
		return dst, ErrBadAttribute
	}
	for i := 0; i < len(v); i += 2 {
		dst = append(dst, AttrType(binary.BigEndian.Uint16(v[i:])))
	}

	return dst, nil
}

// ParseChangeRequest decodes a CHANGE-REQUEST value, which must be exactly
// 4 bytes (ErrBadAttribute). It works on a value rather than a message
// because a server judges every CHANGE-REQUEST a request carries.
func ParseChangeRequest(v []byte) (ChangeFlags, error) {
	if len(v) != 4 {
		return 0, ErrBadAttribute
	}

	return ChangeFlags(binary.BigEndian.Uint32(v)), nil
}
