package client

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"unicode"
	"unicode/utf8"

	"github.com/stund/stund/internal/wire"
)

// maxSoftwareLength is the longest SOFTWARE a request may carry, in bytes
// (RFC 8489 §14.14: fewer than 128 characters, at most 763 bytes).
const maxSoftwareLength = 763

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

// Request is an encoded Binding request.
type Request struct {
	// Raw is the message to send.
	Raw []byte
	// TransactionID is the ID its response must carry.
	TransactionID wire.TransactionID
}

// NewRequest builds a Binding request with the given transaction ID,
// ending in a FINGERPRINT.
func NewRequest(tid wire.TransactionID, opts ...RequestOption) (*Request, error) {
	var cfg requestConfig
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.software) > maxSoftwareLength {
		return nil, fmt.Errorf("build binding request: SOFTWARE of %d bytes, at most %d", len(cfg.software), maxSoftwareLength)
	}
	b := wire.NewBuilder(make([]byte, 0, wire.HeaderSize+64+len(cfg.software)), wire.BindingRequest, tid)
	if cfg.software != "" {
		b.AddString(wire.AttrSoftware, cfg.software)
	}
	if cfg.changeIP || cfg.changePort {
		var flags wire.ChangeFlags
		if cfg.changeIP {
			flags |= wire.ChangeIP
		}
		if cfg.changePort {
			flags |= wire.ChangePort
		}
		b.AddChangeRequest(flags)
	}
	b.AddFingerprint()
	raw, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("build binding request: %w", err)
	}

	return &Request{Raw: raw, TransactionID: tid}, nil
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
func ParseResponse(raw []byte, tid wire.TransactionID) (Answer, error) {
	var ans Answer
	h, err := parseHeader(raw)
	if err != nil {
		return ans, err
	}
	if h.Size() != len(raw) {
		return ans, fmt.Errorf("%w: header says %d bytes, got %d", ErrMalformed, h.Size(), len(raw))
	}
	var m wire.Message
	if err := m.Decode(raw); err != nil {
		return ans, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.TransactionID() != tid {
		return ans, ErrTransactionMismatch
	}
	t := m.Type()
	if t.Method() != wire.MethodBinding || (t.Class() != wire.ClassSuccess && t.Class() != wire.ClassError) {
		return ans, fmt.Errorf("%w: %s", ErrUnexpectedType, t)
	}
	if err := checkFingerprint(&m); err != nil {
		return ans, err
	}
	if t.Class() == wire.ClassError {
		code, reason, err := m.ErrorCode()
		if err != nil {
			return ans, fmt.Errorf("%w: error response without a valid ERROR-CODE: %w", ErrMalformed, err)
		}

		return ans, &ErrorResponse{Code: code, Reason: printable(reason)}
	}

	switch xor, ok := xorMappedType(&m); {
	case ok:
		ans.Mapped, err = address(&m, xor)
	case m.Has(wire.AttrMappedAddress):
		ans.Mapped, err = address(&m, wire.AttrMappedAddress)
	default:
		return ans, ErrNoMappedAddress
	}
	if err != nil {
		return Answer{}, err
	}
	for _, opt := range []struct {
		t    wire.AttrType
		addr *netip.AddrPort
	}{
		{wire.AttrResponseOrigin, &ans.ResponseOrigin},
		{wire.AttrOtherAddress, &ans.OtherAddress},
		{wire.AttrChangedAddress, &ans.ChangedAddress},
	} {
		if m.Has(opt.t) {
			if *opt.addr, err = address(&m, opt.t); err != nil {
				return Answer{}, err
			}
		}
	}
	if v, ok := m.Get(wire.AttrSoftware); ok {
		ans.Software = printable(v)
	}

	return ans, nil
}

// parseHeader applies the RFC 8489 §6.3 checks to the header at the start
// of raw, in the order this client reports them: size, first two bits,
// magic cookie, length a multiple of 4. It does not compare the length
// with len(raw), so it also frames a stream.
func parseHeader(raw []byte) (wire.Header, error) {
	h, err := wire.ParseHeader(raw)
	switch {
	case errors.Is(err, wire.ErrShort):
		return h, fmt.Errorf("%w: %d bytes is shorter than a header", ErrMalformed, len(raw))
	case errors.Is(err, wire.ErrNotSTUN):
		return h, fmt.Errorf("%w: first two bits are not zero", ErrMalformed)
	case h.Classic():
		return h, fmt.Errorf("%w: wrong magic cookie", ErrMalformed)
	case err != nil:
		return h, fmt.Errorf("%w: length %d is not a multiple of 4", ErrMalformed, h.Length)
	}

	return h, nil
}

// checkFingerprint checks FINGERPRINT when the response carries one.
func checkFingerprint(m *wire.Message) error {
	if !m.Has(wire.AttrFingerprint) {
		return nil
	}
	if m.Attr(m.Len()-1).Type != wire.AttrFingerprint {
		return fmt.Errorf("%w: not the last attribute", ErrFingerprint)
	}
	if err := m.CheckFingerprint(); err != nil {
		return fmt.Errorf("%w: %w", ErrFingerprint, err)
	}

	return nil
}

// xorMappedType returns the type of the first XOR-MAPPED-ADDRESS in m:
// 0x0020, or 0x8020 as drafts of RFC 5389 numbered it and some old
// servers still send it.
func xorMappedType(m *wire.Message) (wire.AttrType, bool) {
	for i := range m.Len() {
		if t := m.Attr(i).Type; t == wire.AttrXORMappedAddress || t == wire.AttrXORMappedAddressDraft {
			return t, true
		}
	}

	return 0, false
}

// address decodes the address attribute t of m, which m carries:
// XOR-MAPPED-ADDRESS (either number) XORed as RFC 8489 §14.2 says, the
// others (MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, CHANGED-ADDRESS)
// as plain §14.1 addresses. The value must be exactly 8 bytes for IPv4 or
// 20 for IPv6: a shorter or longer one is an invalid response, never an
// address padded with zeros or cut short. IPv4-mapped IPv6 addresses are
// returned as IPv4.
func address(m *wire.Message, t wire.AttrType) (netip.AddrPort, error) {
	var a netip.AddrPort
	var err error
	name := t
	switch t {
	case wire.AttrXORMappedAddress, wire.AttrXORMappedAddressDraft:
		a, err = m.XORAddress(t)
		name = wire.AttrXORMappedAddress
	default:
		a, err = m.Address(t)
	}
	if err != nil {
		v, _ := m.Get(t)

		return netip.AddrPort{}, invalidAddress(name, v, err)
	}

	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), nil
}

// invalidAddress says what is wrong with v, the value of address
// attribute t, which wire refused with err.
func invalidAddress(t wire.AttrType, v []byte, err error) error {
	switch {
	case errors.Is(err, wire.ErrAddressLength) && len(v) < 4:
		return invalidAttribute(t, "%d-byte value is shorter than family and port", len(v))
	case errors.Is(err, wire.ErrAddressFamily):
		return invalidAttribute(t, "unknown address family %#02x", v[1])
	case errors.Is(err, wire.ErrAddressLength):
		family, want := "IPv4", 8
		if v[1] == 2 {
			family, want = "IPv6", 20
		}

		return invalidAttribute(t, "%d-byte value for an %s address, want %d bytes", len(v), family, want)
	}

	return invalidAttribute(t, "%w", err)
}

// invalidAttribute says what is wrong with attribute t. The message keeps
// the whole sentence when printed after errors.Unwrap chains are followed.
func invalidAttribute(t wire.AttrType, format string, a ...any) error {
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
