package client

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unicode"
	"unicode/utf8"

	"github.com/pion/stun/v3"
)

const (
	headerSize    = 20
	magicCookie   = 0x2112A442
	changeIPBit   = 0x04
	changePortBit = 0x02
)

// RequestOption changes the Binding request a client sends.
type RequestOption func(*requestConfig)

type requestConfig struct {
	changeIP   bool
	changePort bool
	software   string
}

// WithChangeRequest adds an RFC 5780 CHANGE-REQUEST attribute asking the
// server to answer from its other IP address, its other port, or both.
// Servers that cannot honour it answer with error 420.
func WithChangeRequest(changeIP, changePort bool) RequestOption {
	return func(c *requestConfig) {
		c.changeIP = changeIP
		c.changePort = changePort
	}
}

// WithRequestSoftware adds a SOFTWARE attribute naming the client.
func WithRequestSoftware(name string) RequestOption {
	return func(c *requestConfig) { c.software = name }
}

// NewRequest builds a Binding request with the given transaction ID,
// ending in a FINGERPRINT.
func NewRequest(tid [stun.TransactionIDSize]byte, opts ...RequestOption) (*stun.Message, error) {
	var cfg requestConfig
	for _, o := range opts {
		o(&cfg)
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(tid), stun.BindingRequest}
	if cfg.software != "" {
		setters = append(setters, stun.NewSoftware(cfg.software))
	}
	if cfg.changeIP || cfg.changePort {
		var flags uint32
		if cfg.changeIP {
			flags |= changeIPBit
		}
		if cfg.changePort {
			flags |= changePortBit
		}
		v := make([]byte, 4)
		binary.BigEndian.PutUint32(v, flags)
		setters = append(setters, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: v})
	}
	setters = append(setters, stun.Fingerprint)
	m := stun.New()
	if err := m.Build(setters...); err != nil {
		return nil, fmt.Errorf("build binding request: %w", err)
	}

	return m, nil
}

// Answer is what a validated Binding success response says.
type Answer struct {
	// Mapped is the client's address as the server saw it.
	Mapped netip.AddrPort
	// ResponseOrigin is the RFC 5780 RESPONSE-ORIGIN, if sent.
	ResponseOrigin netip.AddrPort
	// OtherAddress is the RFC 5780 OTHER-ADDRESS, if sent.
	OtherAddress netip.AddrPort
	// ChangedAddress is the RFC 3489 CHANGED-ADDRESS, if sent: what a
	// classic server offers instead of OTHER-ADDRESS.
	ChangedAddress netip.AddrPort
	// Software is the server's SOFTWARE attribute, if sent.
	Software string
}

// ParseResponse validates raw as the response to the Binding request with
// transaction ID tid and returns what it says. raw must hold exactly one
// message. Errors wrap ErrMalformed (ErrInvalidAttribute for a bad
// attribute in an otherwise valid response), ErrTransactionMismatch,
// ErrUnexpectedType, ErrFingerprint or ErrNoMappedAddress, or are an
// *ErrorResponse when the server answered with an error.
func ParseResponse(raw []byte, tid [stun.TransactionIDSize]byte) (Answer, error) {
	var ans Answer
	if err := checkHeader(raw); err != nil {
		return ans, err
	}
	m := stun.New()
	if err := stun.Decode(raw, m); err != nil {
		return ans, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.TransactionID != tid {
		return ans, ErrTransactionMismatch
	}
	if m.Type.Method != stun.MethodBinding ||
		(m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse) {
		return ans, fmt.Errorf("%w: %s", ErrUnexpectedType, m.Type)
	}
	if err := checkFingerprint(m); err != nil {
		return ans, err
	}
	if m.Type.Class == stun.ClassErrorResponse {
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil {
			return ans, fmt.Errorf("%w: error response without a valid ERROR-CODE: %w", ErrMalformed, err)
		}

		return ans, &ErrorResponse{Code: int(ec.Code), Reason: printable(ec.Reason)}
	}

	var err error
	switch {
	case m.Contains(stun.AttrXORMappedAddress):
		ans.Mapped, err = getAddress(m, stun.AttrXORMappedAddress)
	case m.Contains(stun.AttrMappedAddress):
		ans.Mapped, err = getAddress(m, stun.AttrMappedAddress)
	default:
		return ans, ErrNoMappedAddress
	}
	if err != nil {
		return Answer{}, err
	}
	for _, opt := range []struct {
		t    stun.AttrType
		addr *netip.AddrPort
	}{
		{stun.AttrResponseOrigin, &ans.ResponseOrigin},
		{stun.AttrOtherAddress, &ans.OtherAddress},
		{stun.AttrChangedAddress, &ans.ChangedAddress},
	} {
		if m.Contains(opt.t) {
			if *opt.addr, err = getAddress(m, opt.t); err != nil {
				return Answer{}, err
			}
		}
	}
	if v, err := m.Get(stun.AttrSoftware); err == nil {
		ans.Software = printable(v)
	}

	return ans, nil
}

// checkHeader applies the RFC 8489 §6.3 header checks that pion's decoder
// leaves to the caller.
func checkHeader(raw []byte) error {
	if err := checkPrefix(raw); err != nil {
		return err
	}
	length := int(binary.BigEndian.Uint16(raw[2:4]))
	if headerSize+length != len(raw) {
		return fmt.Errorf("%w: header says %d bytes, got %d", ErrMalformed, headerSize+length, len(raw))
	}

	return nil
}

// checkPrefix checks the fixed header fields of the message starting at raw.
func checkPrefix(raw []byte) error {
	if len(raw) < headerSize {
		return fmt.Errorf("%w: %d bytes is shorter than a header", ErrMalformed, len(raw))
	}
	if raw[0]&0xC0 != 0 {
		return fmt.Errorf("%w: first two bits are not zero", ErrMalformed)
	}
	if binary.BigEndian.Uint32(raw[4:8]) != magicCookie {
		return fmt.Errorf("%w: wrong magic cookie", ErrMalformed)
	}
	length := int(binary.BigEndian.Uint16(raw[2:4]))
	if length%4 != 0 {
		return fmt.Errorf("%w: length %d is not a multiple of 4", ErrMalformed, length)
	}

	return nil
}

func checkFingerprint(m *stun.Message) error {
	if !m.Contains(stun.AttrFingerprint) {
		return nil
	}
	if last := m.Attributes[len(m.Attributes)-1]; last.Type != stun.AttrFingerprint {
		return fmt.Errorf("%w: not the last attribute", ErrFingerprint)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		return fmt.Errorf("%w: %w", ErrFingerprint, err)
	}

	return nil
}

// Address families of the STUN address attributes (RFC 8489 §14.1).
const (
	familyIPv4 = 0x01
	familyIPv6 = 0x02
)

// getAddress decodes the address attribute t of m: XOR-MAPPED-ADDRESS
// with the XOR of RFC 8489 §14.2, the others (MAPPED-ADDRESS,
// RESPONSE-ORIGIN, OTHER-ADDRESS, CHANGED-ADDRESS) as plain §14.1
// addresses. The value must be exactly 8 bytes for IPv4 or 20 for IPv6: a
// shorter or longer one is an invalid response, never an address padded
// with zeros or cut short.
func getAddress(m *stun.Message, t stun.AttrType) (netip.AddrPort, error) {
	v, err := m.Get(t)
	if err != nil {
		return netip.AddrPort{}, invalidAttribute(t, "%w", err)
	}
	if len(v) < 4 {
		return netip.AddrPort{}, invalidAttribute(t, "%d-byte value is shorter than family and port", len(v))
	}
	// v[0] is reserved: senders set it to zero, receivers ignore it.
	var want int
	switch v[1] {
	case familyIPv4:
		want = 4 + net.IPv4len
	case familyIPv6:
		want = 4 + net.IPv6len
	default:
		return netip.AddrPort{}, invalidAttribute(t, "unknown address family %#02x", v[1])
	}
	if len(v) != want {
		return netip.AddrPort{}, invalidAttribute(t, "%d-byte value for an %s address, want %d bytes",
			len(v), map[byte]string{familyIPv4: "IPv4", familyIPv6: "IPv6"}[v[1]], want)
	}
	port := binary.BigEndian.Uint16(v[2:4])
	ip := make([]byte, len(v)-4)
	copy(ip, v[4:])
	if t == stun.AttrXORMappedAddress {
		port ^= magicCookie >> 16
		var pad [4 + stun.TransactionIDSize]byte
		binary.BigEndian.PutUint32(pad[:4], magicCookie)
		copy(pad[4:], m.TransactionID[:])
		for i := range ip {
			ip[i] ^= pad[i]
		}
	}
	a, _ := netip.AddrFromSlice(ip) // 4 or 16 bytes: always valid

	return netip.AddrPortFrom(a.Unmap(), port), nil
}

// invalidAttribute says what is wrong with attribute t. The message keeps
// the whole sentence when printed after errors.Unwrap chains are followed.
func invalidAttribute(t stun.AttrType, format string, a ...any) error {
	return fmt.Errorf("%w: %w", ErrInvalidAttribute, fmt.Errorf("%s: "+format, append([]any{t}, a...)...))
}

// printable keeps a server-supplied string safe to print on a terminal:
// trailing NULs (C strings, padding) are dropped; C0 and C1 controls,
// DEL, invalid UTF-8 and the Unicode bidi controls (which reorder the rest
// of the line, U+202A-U+202E, U+2066-U+2069 and the marks) become "?";
// at most 128 characters are kept.
func printable(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			r = '?'
		}
		out = append(out, r)
	}
	if len(out) > 128 {
		out = out[:128]
	}

	return string(out)
}
