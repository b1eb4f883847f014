package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

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
	// Software is the server's SOFTWARE attribute, if sent.
	Software string
}

// ParseResponse validates raw as the response to the Binding request with
// transaction ID tid and returns what it says. raw must hold exactly one
// message. Errors wrap ErrMalformed, ErrTransactionMismatch,
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

	var xor stun.XORMappedAddress
	var err error
	switch {
	case m.Contains(stun.AttrXORMappedAddress):
		if err = xor.GetFrom(m); err != nil {
			return ans, fmt.Errorf("%w: XOR-MAPPED-ADDRESS: %w", ErrMalformed, err)
		}
		ans.Mapped, err = addrPort(xor.IP, xor.Port)
	case m.Contains(stun.AttrMappedAddress):
		var ma stun.MappedAddress
		if err = ma.GetFrom(m); err != nil {
			return ans, fmt.Errorf("%w: MAPPED-ADDRESS: %w", ErrMalformed, err)
		}
		ans.Mapped, err = addrPort(ma.IP, ma.Port)
	default:
		return ans, ErrNoMappedAddress
	}
	if err != nil {
		return ans, fmt.Errorf("%w: mapped address: %w", ErrMalformed, err)
	}
	if m.Contains(stun.AttrResponseOrigin) {
		var ro stun.ResponseOrigin
		if err := ro.GetFrom(m); err != nil {
			return ans, fmt.Errorf("%w: RESPONSE-ORIGIN: %w", ErrMalformed, err)
		}
		if ans.ResponseOrigin, err = addrPort(ro.IP, ro.Port); err != nil {
			return ans, fmt.Errorf("%w: RESPONSE-ORIGIN: %w", ErrMalformed, err)
		}
	}
	if m.Contains(stun.AttrOtherAddress) {
		var oa stun.OtherAddress
		if err := oa.GetFrom(m); err != nil {
			return ans, fmt.Errorf("%w: OTHER-ADDRESS: %w", ErrMalformed, err)
		}
		if ans.OtherAddress, err = addrPort(oa.IP, oa.Port); err != nil {
			return ans, fmt.Errorf("%w: OTHER-ADDRESS: %w", ErrMalformed, err)
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

var errBadAddress = errors.New("bad address")

func addrPort(ip net.IP, port int) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 0xFFFF {
		return netip.AddrPort{}, errBadAddress
	}

	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// printable keeps a server-supplied string safe to print on a terminal.
func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			r = '?'
		}
		out = append(out, r)
	}
	if len(out) > 128 {
		out = out[:128]
	}

	return string(out)
}
