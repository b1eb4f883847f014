package client

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun/v3"
)

// RFC 5769 §2.2 and §2.3 sample responses.
const (
	rfc5769IPv4 = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
	rfc5769IPv6 = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c"
	rfc5769Req  = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"
)

var rfc5769TID = [12]byte{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}

	return b
}

func build(t *testing.T, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}

	return m.Raw
}

type parseCase struct {
	name    string
	raw     []byte
	tid     [12]byte
	want    Answer
	wantErr error
	errCode int
}

func TestParseResponse(t *testing.T) {
	tid := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	other := [12]byte{9}
	xor := &stun.XORMappedAddress{IP: net.ParseIP("198.51.100.7"), Port: 40000}
	want := netip.MustParseAddrPort("198.51.100.7:40000")
	badFP := build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, xor, stun.Fingerprint)
	badFP[len(badFP)-1] ^= 1
	fpNotLast := build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, stun.Fingerprint, xor)
	badBits := build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, xor)
	badBits[0] |= 0x80
	trailing := append(build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, xor), 0, 0, 0, 0)

	tests := []parseCase{
		{
			name: "rfc5769 ipv4 response",
			raw:  mustHex(t, rfc5769IPv4), tid: rfc5769TID,
			want: Answer{Mapped: netip.MustParseAddrPort("192.0.2.1:32853"), Software: "test vector"},
		},
		{
			name: "rfc5769 ipv6 response",
			raw:  mustHex(t, rfc5769IPv6), tid: rfc5769TID,
			want: Answer{Mapped: netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"), Software: "test vector"},
		},
		{name: "rfc5769 request is not a response", raw: mustHex(t, rfc5769Req), tid: rfc5769TID, wantErr: ErrUnexpectedType},
		{
			name: "xor mapped with rfc5780 attributes",
			raw: build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, xor,
				&stun.ResponseOrigin{IP: net.ParseIP("192.0.2.1"), Port: 3478},
				&stun.OtherAddress{IP: net.ParseIP("192.0.2.2"), Port: 3479}, stun.Fingerprint),
			tid: tid,
			want: Answer{
				Mapped:         want,
				ResponseOrigin: netip.MustParseAddrPort("192.0.2.1:3478"),
				OtherAddress:   netip.MustParseAddrPort("192.0.2.2:3479"),
			},
		},
		{
			name: "mapped-address fallback",
			raw:  build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess, &stun.MappedAddress{IP: net.ParseIP("198.51.100.7"), Port: 40000}),
			tid:  tid, want: Answer{Mapped: want},
		},
		{
			name: "xor preferred over mapped",
			raw: build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess,
				&stun.MappedAddress{IP: net.ParseIP("10.0.0.1"), Port: 1}, xor),
			tid: tid, want: Answer{Mapped: want},
		},
		{name: "wrong transaction id", raw: build(t, stun.NewTransactionIDSetter(other), stun.BindingSuccess, xor), tid: tid, wantErr: ErrTransactionMismatch},
		{name: "indication", raw: build(t, stun.NewTransactionIDSetter(tid), stun.NewType(stun.MethodBinding, stun.ClassIndication), xor), tid: tid, wantErr: ErrUnexpectedType},
		{name: "other method", raw: build(t, stun.NewTransactionIDSetter(tid), stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), xor), tid: tid, wantErr: ErrUnexpectedType},
		{name: "broken fingerprint", raw: badFP, tid: tid, wantErr: ErrFingerprint},
		{name: "fingerprint not last", raw: fpNotLast, tid: tid, wantErr: ErrFingerprint},
		{name: "no mapped address", raw: build(t, stun.NewTransactionIDSetter(tid), stun.BindingSuccess), tid: tid, wantErr: ErrNoMappedAddress},
		{name: "error response", raw: build(t, stun.NewTransactionIDSetter(tid), stun.BindingError, stun.CodeUnknownAttribute), tid: tid, errCode: 420},
		{name: "short", raw: []byte{1, 1, 0, 0}, tid: tid, wantErr: ErrMalformed},
		{name: "top bits set", raw: badBits, tid: tid, wantErr: ErrMalformed},
		{name: "trailing bytes", raw: trailing, tid: tid, wantErr: ErrMalformed},
		{name: "no magic cookie", raw: append([]byte{1, 1, 0, 0, 0, 0, 0, 0}, make([]byte, 12)...), tid: tid, wantErr: ErrMalformed},
	}
	tests = append(tests, addressAttributeCases(t, tid)...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResponse(tc.raw, tc.tid)
			if tc.errCode != 0 {
				var er *ErrorResponse
				if !errors.As(err, &er) || er.Code != tc.errCode {
					t.Fatalf("err = %v, want error response %d", err, tc.errCode)
				}

				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// addrValue encodes a STUN address attribute value (RFC 8489 §14.1) with
// the given family byte and address bytes, not XORed.
func addrValue(family byte, port uint16, ip []byte) []byte {
	return append([]byte{0, family, byte(port >> 8), byte(port)}, ip...)
}

// xorValue XORs an address value as XOR-MAPPED-ADDRESS does (§14.2).
func xorValue(v []byte, tid [12]byte) []byte {
	out := append([]byte(nil), v...)
	pad := append([]byte{0x21, 0x12, 0xa4, 0x42}, tid[:]...)
	out[2] ^= pad[0]
	out[3] ^= pad[1]
	for i := 4; i < len(out) && i-4 < len(pad); i++ {
		out[i] ^= pad[i-4]
	}

	return out
}

// addressAttributeCases are responses whose address attributes have a
// value of the wrong length for their family, an unknown family or a
// reserved byte set. Issue 13 item 14: a 4-byte address under family IPv6
// was read as [2010:a746::] and judged "rewritten".
func addressAttributeCases(t *testing.T, tid [12]byte) []parseCase {
	t.Helper()
	v4 := []byte{198, 51, 100, 7}
	v6 := netip.MustParseAddr("2001:db8::7").AsSlice()
	mapped := &stun.XORMappedAddress{IP: net.ParseIP("198.51.100.7"), Port: 40000}
	want := netip.MustParseAddrPort("198.51.100.7:40000")
	msg := func(attrs ...stun.Setter) []byte {
		return build(t, append(append([]stun.Setter{stun.NewTransactionIDSetter(tid), stun.BindingSuccess}, attrs...), stun.Fingerprint)...)
	}
	raw := func(typ stun.AttrType, v []byte) stun.Setter { return stun.RawAttribute{Type: typ, Value: v} }
	xorRaw := func(v []byte) stun.Setter { return raw(stun.AttrXORMappedAddress, xorValue(v, tid)) }
	bad := []struct {
		name string
		attr stun.Setter
	}{
		{"xor-mapped ipv6 family with an ipv4 address", xorRaw(addrValue(2, 40000, v4))},
		{"xor-mapped ipv4 family with an ipv6 address", xorRaw(addrValue(1, 40000, v6))},
		{"xor-mapped ipv4 family with 2 address bytes", xorRaw(addrValue(1, 40000, v4[:2]))},
		{"xor-mapped ipv6 family with 12 address bytes", xorRaw(addrValue(2, 40000, v6[:12]))},
		{"xor-mapped ipv4 with trailing bytes", xorRaw(addrValue(1, 40000, append(v4, 0, 0, 0, 0)))},
		{"xor-mapped family and port only", xorRaw(addrValue(2, 40000, nil))},
		{"xor-mapped 2 bytes", raw(stun.AttrXORMappedAddress, []byte{0, 1})},
		{"xor-mapped unknown family", xorRaw(addrValue(3, 40000, v4))},
		{"mapped ipv6 family with an ipv4 address", raw(stun.AttrMappedAddress, addrValue(2, 40000, v4))},
		{"mapped ipv4 family with 3 address bytes", raw(stun.AttrMappedAddress, addrValue(1, 40000, v4[:3]))},
	}
	optional := []struct {
		name string
		typ  stun.AttrType
	}{
		{"response-origin", stun.AttrResponseOrigin},
		{"other-address", stun.AttrOtherAddress},
		{"changed-address", stun.AttrChangedAddress},
	}
	for _, o := range optional {
		bad = append(bad,
			struct {
				name string
				attr stun.Setter
			}{o.name + " ipv6 family with an ipv4 address", raw(o.typ, addrValue(2, 3479, v4))},
			struct {
				name string
				attr stun.Setter
			}{o.name + " ipv4 family with an ipv6 address", raw(o.typ, addrValue(1, 3479, v6))},
		)
	}
	var cases []parseCase
	for _, b := range bad {
		attrs := []stun.Setter{b.attr}
		if b.attr.(stun.RawAttribute).Type != stun.AttrXORMappedAddress && b.attr.(stun.RawAttribute).Type != stun.AttrMappedAddress {
			attrs = []stun.Setter{mapped, b.attr}
		}
		cases = append(cases, parseCase{name: b.name, raw: msg(attrs...), tid: tid, wantErr: ErrInvalidAttribute})
	}

	return append(cases,
		parseCase{
			name: "xor-mapped ipv6, exact length", tid: tid,
			raw:  msg(xorRaw(addrValue(2, 40000, v6))),
			want: Answer{Mapped: netip.MustParseAddrPort("[2001:db8::7]:40000")},
		},
		parseCase{
			name: "reserved byte is ignored", tid: tid,
			raw:  msg(xorRaw(append([]byte{0xff}, addrValue(1, 40000, v4)[1:]...))),
			want: Answer{Mapped: want},
		},
		parseCase{
			name: "classic changed-address", tid: tid,
			raw:  msg(mapped, raw(stun.AttrChangedAddress, addrValue(1, 3479, []byte{192, 0, 2, 2}))),
			want: Answer{Mapped: want, ChangedAddress: netip.MustParseAddrPort("192.0.2.2:3479")},
		},
	)
}

func TestNewRequest(t *testing.T) {
	tid := stun.NewTransactionID()
	tests := []struct {
		name      string
		opts      []RequestOption
		wantFlags uint32
		hasChange bool
	}{
		{name: "plain"},
		{name: "change ip and port", opts: []RequestOption{WithChangeRequest(true, true)}, wantFlags: 6, hasChange: true},
		{name: "change port", opts: []RequestOption{WithChangeRequest(false, true)}, wantFlags: 2, hasChange: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewRequest(tid, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := stun.New()
			if err := stun.Decode(m.Raw, got); err != nil {
				t.Fatal(err)
			}
			if got.Type != stun.BindingRequest || got.TransactionID != tid {
				t.Fatalf("type %s tid %x", got.Type, got.TransactionID)
			}
			if err := stun.Fingerprint.Check(got); err != nil {
				t.Fatalf("fingerprint: %v", err)
			}
			v, err := got.Get(stun.AttrChangeRequest)
			if (err == nil) != tc.hasChange {
				t.Fatalf("CHANGE-REQUEST present = %v, want %v", err == nil, tc.hasChange)
			}
			if tc.hasChange && uint32(v[3]) != tc.wantFlags {
				t.Errorf("flags %x, want %x", v, tc.wantFlags)
			}
		})
	}
}

// TestPrintable checks what a server-supplied string (SOFTWARE, an error
// reason) may put on a terminal. Issue 13 item 16: a trailing NUL showed
// as "?" and bidi controls went through.
func TestPrintable(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "Coturn-4.6.1 'Gorst'", "Coturn-4.6.1 'Gorst'"},
		{"trailing nul", "stund\x00", "stund"},
		{"trailing nuls", "stund\x00\x00\x00", "stund"},
		{"inner nul", "st\x00und", "st?und"},
		{"escape", "a\x1b[31mred", "a?[31mred"},
		{"newline", "a\nb", "a?b"},
		{"del and c1", "a\x7fb\u0085c", "a?b?c"},
		{"invalid utf-8", "a\xffb", "a?b"},
		{"bidi override", "abc\u202Efed.exe", "abc?fed.exe"},
		{"bidi embeddings", "\u202Aa\u202Bb\u202Cc\u202Dd", "?a?b?c?d"},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", "?a?b?c?"},
		{"bidi marks", "a\u200Eb\u200Fc\u061Cd", "a?b?c?d"},
		{"non-latin kept", "сервер 服务器", "сервер 服务器"},
		{"capped at 128", long, long[:128]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := printable([]byte(tc.in)); got != tc.want {
				t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
