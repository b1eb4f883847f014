package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var testID = TransactionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// rawMessage lays out a message by hand, independently of Builder: the
// header with type typ, cookie and the test transaction ID, then attrs as
// given (already encoded), with the length counted.
func rawMessage(typ uint16, cookie uint32, attrs ...[]byte) []byte {
	b := make([]byte, HeaderSize)
	binary.BigEndian.PutUint16(b[0:], typ)
	binary.BigEndian.PutUint32(b[4:], cookie)
	copy(b[8:], testID[:])
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-HeaderSize)) //nolint:gosec // small

	return b
}

// rawAttr encodes one attribute with its value padded with pad bytes.
func rawAttr(typ uint16, v []byte, pad byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v))) //nolint:gosec // small
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, pad)
	}

	return b
}

func TestDecodeErrors(t *testing.T) {
	good := rawMessage(0x0001, MagicCookie, rawAttr(0x8022, []byte("abc"), 0))
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	manyAttrs := make([][]byte, MaxAttributes+1)
	for i := range manyAttrs {
		manyAttrs[i] = rawAttr(0x8022, nil, 0)
	}
	tests := []struct {
		name    string
		b       []byte
		want    error
		classic error // from DecodeAllowClassic
	}{
		{"empty", nil, ErrShort, ErrShort},
		{"19 bytes", good[:19], ErrShort, ErrShort},
		{"first bit", with(func(b []byte) []byte { b[0] |= 0x80; return b }), ErrNotSTUN, ErrNotSTUN},
		{"second bit", with(func(b []byte) []byte { b[0] |= 0x40; return b }), ErrNotSTUN, ErrNotSTUN},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrNotSTUN, ErrNotSTUN},
		{"length not a multiple of 4", with(func(b []byte) []byte { b[3] = 7; return b[:27] }), ErrBadLength, ErrBadLength},
		{"length longer than the bytes", with(func(b []byte) []byte { return b[:len(b)-4] }), ErrBadLength, ErrBadLength},
		{"trailing bytes", with(func(b []byte) []byte { return append(b, 0, 0, 0, 0) }), ErrBadLength, ErrBadLength},
		{"no magic cookie", with(func(b []byte) []byte { b[4] = 0; return b }), ErrBadCookie, nil},
		{"attribute overruns", with(func(b []byte) []byte { b[23] = 8; return b }), ErrMalformed, ErrMalformed},
		{"last attribute's padding overruns", rawMessage(0x0001, MagicCookie, []byte{0x80, 0x22, 0, 5, 'a', 'b', 'c', 'd'}), ErrMalformed, ErrMalformed},
		{"too many attributes", rawMessage(0x0001, MagicCookie, manyAttrs...), ErrTooManyAttributes, ErrTooManyAttributes},
		{"as many attributes as indexed", rawMessage(0x0001, MagicCookie, manyAttrs[1:]...), nil, nil},
		// The order of RFC 8489 §6.3: the first failed check wins.
		{"top bits before length", with(func(b []byte) []byte { b[0] |= 0x80; return b[:len(b)-4] }), ErrNotSTUN, ErrNotSTUN},
		{"length before cookie", with(func(b []byte) []byte { b[4] = 0; return b[:len(b)-4] }), ErrBadLength, ErrBadLength},
		{"cookie before attributes", with(func(b []byte) []byte { b[4] = 0; b[23] = 8; return b }), ErrBadCookie, ErrMalformed},
		{"good", good, nil, nil},
		{"header alone, length says 8", good[:HeaderSize:HeaderSize], ErrBadLength, ErrBadLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := m.Decode(tc.b)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Decode: %v, want %v", err, tc.want)
			}
			if err != nil && (m.Len() != 0 || m.Raw() != nil) {
				t.Errorf("Decode failed but left %d attributes", m.Len())
			}
			err = m.DecodeAllowClassic(tc.b)
			if !errors.Is(err, tc.classic) || (tc.classic == nil) != (err == nil) {
				t.Errorf("DecodeAllowClassic: %v, want %v", err, tc.classic)
			}
		})
	}
}

// TestDecodeClassic decodes an RFC 3489 request: no cookie, a 16-byte
// transaction ID, attributes as usual.
func TestDecodeClassic(t *testing.T) {
	b := rawMessage(0x0001, 0x09080706, rawAttr(0x0003, []byte{0, 0, 0, 6}, 0))
	var m Message
	if err := m.DecodeAllowClassic(b); err != nil {
		t.Fatal(err)
	}
	if !m.Classic() || m.Type() != BindingRequest {
		t.Errorf("classic %v type %s", m.Classic(), m.Type())
	}
	want := [16]byte{9, 8, 7, 6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if m.ClassicTransactionID() != want {
		t.Errorf("classic transaction ID %x, want %x", m.ClassicTransactionID(), want)
	}
	v, ok := m.Get(AttrChangeRequest)
	if f, err := ParseChangeRequest(v); !ok || err != nil || f != ChangeIP|ChangePort {
		t.Errorf("CHANGE-REQUEST %x (%v), want IP and port", f, err)
	}
	// The same bytes with the cookie are not classic.
	binary.BigEndian.PutUint32(b[4:], MagicCookie)
	if err := m.DecodeAllowClassic(b); err != nil || m.Classic() {
		t.Errorf("with the cookie: classic %v, %v", m.Classic(), err)
	}
}

func TestMessageReuse(t *testing.T) {
	var m Message
	if err := m.Decode(rawMessage(0x0101, MagicCookie, rawAttr(0x8022, []byte("x"), 0), rawAttr(0x0009, []byte{0, 0, 4, 20}, 0))); err != nil {
		t.Fatal(err)
	}
	if err := m.Decode(rawMessage(0x0001, MagicCookie)); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 || m.Has(AttrSoftware) || m.Type() != BindingRequest {
		t.Errorf("a reused message keeps %d attributes, type %s", m.Len(), m.Type())
	}
	m.Reset()
	if m.Raw() != nil || m.Type() != 0 || m.TransactionID() != (TransactionID{}) {
		t.Errorf("Reset left %x", m.Raw())
	}
}

func TestGet(t *testing.T) {
	var m Message
	b := rawMessage(0x0001, MagicCookie,
		rawAttr(0x8022, []byte("first"), 0xAA),
		rawAttr(0x7F01, nil, 0),
		rawAttr(0x8022, []byte("second"), 0))
	if err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	v, ok := m.Get(AttrSoftware)
	if !ok || string(v) != "first" || cap(v) != len(v) {
		t.Errorf("Get(SOFTWARE) = %q (cap %d), %v; want the first, without its padding", v, cap(v), ok)
	}
	if v, ok := m.Get(0x7F01); !ok || len(v) != 0 {
		t.Errorf("empty attribute: %q, %v", v, ok)
	}
	if _, ok := m.Get(AttrUsername); ok || m.Has(AttrUsername) {
		t.Error("found an absent attribute")
	}
	if a := m.Attr(2); a.Type != AttrSoftware || string(a.Value) != "second" {
		t.Errorf("Attr(2) = %s %q", a.Type, a.Value)
	}
	defer func() {
		if recover() == nil {
			t.Error("Attr(3) of 3 attributes did not panic")
		}
	}()
	m.Attr(3)
}

func TestCheckFingerprint(t *testing.T) {
	withFP := func(attrs ...[]byte) []byte {
		b := rawMessage(0x0101, MagicCookie, append(attrs, rawAttr(0x8028, make([]byte, 4), 0))...)
		binary.BigEndian.PutUint32(b[len(b)-4:], Fingerprint(b[:len(b)-8]))

		return b
	}
	good := withFP(rawAttr(0x8022, []byte("x"), 0))
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	covered := bytes.Clone(good)
	covered[HeaderSize+4] ^= 1 // a byte of SOFTWARE
	notLast := append(bytes.Clone(good), rawAttr(0x8022, nil, 0)...)
	binary.BigEndian.PutUint16(notLast[2:], uint16(len(notLast)-HeaderSize)) //nolint:gosec // small
	long := rawMessage(0x0101, MagicCookie, rawAttr(0x8028, make([]byte, 8), 0))
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"absent", rawMessage(0x0101, MagicCookie, rawAttr(0x8022, []byte("x"), 0)), nil},
		{"good", good, nil},
		{"alone", withFP(), nil},
		{"value flipped", flipped, ErrBadFingerprint},
		{"message changed", covered, ErrBadFingerprint},
		{"not last", notLast, ErrFingerprintMalformed},
		{"8 bytes", long, ErrFingerprintMalformed},
		{"2 bytes", rawMessage(0x0101, MagicCookie, rawAttr(0x8028, make([]byte, 2), 0)), ErrFingerprintMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := m.Decode(tc.b); err != nil {
				t.Fatal(err)
			}
			err := m.CheckFingerprint()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			// A bad CRC is not a malformed FINGERPRINT; a malformed one
			// is also a bad one.
			if tc.want == ErrBadFingerprint && errors.Is(err, ErrFingerprintMalformed) {
				t.Error("a wrong CRC counts as malformed")
			}
		})
	}
	if !errors.Is(ErrFingerprintMalformed, ErrBadFingerprint) {
		t.Error("ErrFingerprintMalformed does not wrap ErrBadFingerprint")
	}
}

// addrValue lays out an address value: reserved byte, family, port, ip.
func addrValue(family byte, port uint16, ip []byte) []byte {
	return append([]byte{0, family, byte(port >> 8), byte(port)}, ip...)
}

// xorValue XORs an address value laid out by addrValue for testID.
func xorValue(v []byte) []byte {
	v = bytes.Clone(v)
	key := append(binary.BigEndian.AppendUint32(nil, MagicCookie), testID[:]...)
	for i := 2; i < len(v); i++ {
		if i < 4 {
			v[i] ^= key[i-2]
		} else if i-4 < len(key) {
			v[i] ^= key[i-4]
		}
	}

	return v
}

func TestAddressStrict(t *testing.T) {
	v4 := []byte{198, 51, 100, 7}
	v6 := netip.MustParseAddr("2001:db8::7").AsSlice()
	mapped := netip.MustParseAddr("::ffff:198.51.100.7").AsSlice()
	tests := []struct {
		name  string
		value []byte // plain; XORed for the XOR case
		want  netip.AddrPort
		err   error
	}{
		{"ipv4", addrValue(1, 40000, v4), netip.MustParseAddrPort("198.51.100.7:40000"), nil},
		{"ipv6", addrValue(2, 40000, v6), netip.MustParseAddrPort("[2001:db8::7]:40000"), nil},
		{"ipv4-mapped ipv6 stays ipv6", addrValue(2, 1, mapped), netip.MustParseAddrPort("[::ffff:198.51.100.7]:1"), nil},
		{"reserved byte ignored", append([]byte{0xff}, addrValue(1, 40000, v4)[1:]...), netip.MustParseAddrPort("198.51.100.7:40000"), nil},
		{"port 0", addrValue(1, 0, v4), netip.MustParseAddrPort("198.51.100.7:0"), nil},
		{"ipv6 family, 4-byte address", addrValue(2, 40000, v4), netip.AddrPort{}, ErrAddressLength},
		{"ipv4 family, 16-byte address", addrValue(1, 40000, v6), netip.AddrPort{}, ErrAddressLength},
		{"ipv4 family, 2-byte address", addrValue(1, 40000, v4[:2]), netip.AddrPort{}, ErrAddressLength},
		{"ipv4 family, 3-byte address", addrValue(1, 40000, v4[:3]), netip.AddrPort{}, ErrAddressLength},
		{"ipv6 family, 12-byte address", addrValue(2, 40000, v6[:12]), netip.AddrPort{}, ErrAddressLength},
		{"ipv4 with trailing bytes", addrValue(1, 40000, append(bytes.Clone(v4), 0, 0, 0, 0)), netip.AddrPort{}, ErrAddressLength},
		{"family and port only", addrValue(2, 40000, nil), netip.AddrPort{}, ErrAddressLength},
		{"2 bytes", []byte{0, 1}, netip.AddrPort{}, ErrAddressLength},
		{"empty", nil, netip.AddrPort{}, ErrAddressLength},
		{"family 0", addrValue(0, 40000, v4), netip.AddrPort{}, ErrAddressFamily},
		{"family 3", addrValue(3, 40000, v4), netip.AddrPort{}, ErrAddressFamily},
	}
	plain := []AttrType{AttrMappedAddress, AttrResponseOrigin, AttrOtherAddress, AttrChangedAddress}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what string, got netip.AddrPort, err error) {
				t.Helper()
				if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || got != tc.want {
					t.Errorf("%s: %s (%v), want %s (%v)", what, got, err, tc.want, tc.err)
				}
				if tc.err != nil && !errors.Is(err, ErrBadAttribute) {
					t.Errorf("%s: %v does not wrap ErrBadAttribute", what, err)
				}
			}
			for _, typ := range plain {
				var m Message
				if err := m.Decode(rawMessage(0x0101, MagicCookie, rawAttr(uint16(typ), tc.value, 0))); err != nil {
					t.Fatal(err)
				}
				got, err := m.Address(typ)
				check(typ.String(), got, err)
			}
			var m Message
			if err := m.Decode(rawMessage(0x0101, MagicCookie, rawAttr(uint16(AttrXORMappedAddress), xorValue(tc.value), 0))); err != nil {
				t.Fatal(err)
			}
			got, err := m.XORAddress(AttrXORMappedAddress)
			check("XOR-MAPPED-ADDRESS", got, err)
		})
	}
	var m Message
	if err := m.Decode(rawMessage(0x0101, MagicCookie)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Address(AttrMappedAddress); err != ErrNoAttribute {
		t.Errorf("absent MAPPED-ADDRESS: %v", err)
	}
	if _, err := m.XORAddress(AttrXORMappedAddress); err != ErrNoAttribute {
		t.Errorf("absent XOR-MAPPED-ADDRESS: %v", err)
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name   string
		attrs  [][]byte
		code   int
		reason string
		err    error
	}{
		{"420", [][]byte{rawAttr(0x0009, append([]byte{0, 0, 4, 20}, "Unknown Attribute"...), 0)}, 420, "Unknown Attribute", nil},
		{"no reason", [][]byte{rawAttr(0x0009, []byte{0, 0, 5, 0}, 0)}, 500, "", nil},
		{"reserved bits ignored", [][]byte{rawAttr(0x0009, []byte{0xff, 0xff, 0xfb, 1}, 0)}, 301, "", nil},
		{"3 bytes", [][]byte{rawAttr(0x0009, []byte{0, 4, 20}, 0)}, 0, "", ErrBadAttribute},
		{"absent", nil, 0, "", ErrNoAttribute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := m.Decode(rawMessage(0x0111, MagicCookie, tc.attrs...)); err != nil {
				t.Fatal(err)
			}
			code, reason, err := m.ErrorCode()
			if err != tc.err || code != tc.code || string(reason) != tc.reason {
				t.Errorf("%d %q (%v), want %d %q (%v)", code, reason, err, tc.code, tc.reason, tc.err)
			}
		})
	}
}

func TestUnknownAttributes(t *testing.T) {
	var m Message
	if err := m.Decode(rawMessage(0x0111, MagicCookie, rawAttr(0x000A, []byte{0x7f, 0x01, 0, 3, 0, 3}, 0))); err != nil {
		t.Fatal(err)
	}
	var buf [4]AttrType
	got, err := m.UnknownAttributes(buf[:0])
	if err != nil || len(got) != 3 || got[0] != 0x7F01 || got[1] != AttrChangeRequest || got[2] != AttrChangeRequest {
		t.Errorf("%v (%v)", got, err)
	}
	if err := m.Decode(rawMessage(0x0111, MagicCookie, rawAttr(0x000A, []byte{0x7f, 0x01, 0}, 0))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UnknownAttributes(nil); err != ErrBadAttribute {
		t.Errorf("odd length: %v", err)
	}
	if err := m.Decode(rawMessage(0x0111, MagicCookie)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UnknownAttributes(nil); err != ErrNoAttribute {
		t.Errorf("absent: %v", err)
	}
}

func TestParseChangeRequest(t *testing.T) {
	tests := []struct {
		v    []byte
		want ChangeFlags
		err  error
	}{
		{[]byte{0, 0, 0, 0}, 0, nil},
		{[]byte{0, 0, 0, 4}, ChangeIP, nil},
		{[]byte{0, 0, 0, 2}, ChangePort, nil},
		{[]byte{0, 0, 0, 6}, ChangeIP | ChangePort, nil},
		{[]byte{0, 0, 0}, 0, ErrBadAttribute},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 0}, 0, ErrBadAttribute},
		{nil, 0, ErrBadAttribute},
	}
	for _, tc := range tests {
		if got, err := ParseChangeRequest(tc.v); got != tc.want || err != tc.err {
			t.Errorf("ParseChangeRequest(%x) = %v, %v; want %v, %v", tc.v, got, err, tc.want, tc.err)
		}
	}
}

func TestParseHeader(t *testing.T) {
	full := rawMessage(0x0101, MagicCookie, rawAttr(0x8022, []byte("abcd"), 0))
	h, err := ParseHeader(full[:HeaderSize])
	if err != nil || h.Type != BindingSuccess || h.Length != 8 || h.Size() != len(full) || h.Classic() {
		t.Errorf("%+v (%v)", h, err)
	}
	classic := rawMessage(0x0001, 0)
	if h, err := ParseHeader(classic); err != nil || !h.Classic() {
		t.Errorf("classic: %+v (%v)", h, err)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":        {full[:HeaderSize-1], ErrShort},
		"not stun":     {append([]byte{0xC0}, full[1:HeaderSize]...), ErrNotSTUN},
		"odd length":   {append([]byte{1, 1, 0, 6}, full[4:HeaderSize]...), ErrBadLength},
		"short, odd":   {[]byte{0xC0}, ErrShort},
		"stun, odd":    {append([]byte{0xC0, 1, 0, 6}, full[4:HeaderSize]...), ErrNotSTUN},
		"cookie wrong": {classic, nil},
	} {
		if _, err := ParseHeader(tc.b); err != tc.want {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	odd := append([]byte{1, 1, 0, 6, 0, 0, 0, 0}, full[8:HeaderSize]...)
	if h, err := ParseHeader(odd); err != ErrBadLength || h.Length != 6 || h.Type != BindingSuccess || !h.Classic() {
		t.Errorf("odd length, no cookie: %+v (%v), want the header as read with ErrBadLength", h, err)
	}
}

func TestMessageType(t *testing.T) {
	known := []struct {
		m    Method
		c    Class
		want MessageType
		name string
	}{
		{MethodBinding, ClassRequest, BindingRequest, "Binding request"},
		{MethodBinding, ClassIndication, BindingIndication, "Binding indication"},
		{MethodBinding, ClassSuccess, BindingSuccess, "Binding success response"},
		{MethodBinding, ClassError, BindingError, "Binding error response"},
		{0x003, ClassRequest, 0x0003, "method 0x3 request"},          // TURN Allocate
		{0x003, ClassError, 0x0113, "method 0x3 error response"},     // its error response
		{0x00A, ClassSuccess, 0x010A, "method 0xa success response"}, // TURN Connect
		{0xFFF, ClassError, 0x3FFF, "method 0xfff error response"},
	}
	for _, tc := range known {
		if got := NewType(tc.m, tc.c); got != tc.want || got.String() != tc.name {
			t.Errorf("NewType(%#x, %d) = %#04x %q, want %#04x %q", tc.m, tc.c, uint16(got), got, uint16(tc.want), tc.name)
		}
	}
	for m := range Method(0x1000) {
		for c := range Class(4) {
			typ := NewType(m, c)
			if typ.Method() != m || typ.Class() != c || typ&0xC000 != 0 {
				t.Fatalf("NewType(%#x, %d) = %#04x reads back as %#x, %d", m, c, uint16(typ), typ.Method(), typ.Class())
			}
		}
	}
}

func TestAttrType(t *testing.T) {
	if AttrXORMappedAddress.String() != "XOR-MAPPED-ADDRESS" || AttrType(0x7f01).String() != "0x7f01" {
		t.Errorf("names: %s, %s", AttrXORMappedAddress, AttrType(0x7f01))
	}
	if !AttrChangeRequest.Required() || !AttrType(0x7FFF).Required() || AttrSoftware.Required() || AttrType(0x8000).Required() {
		t.Error("Required() does not split at 0x8000")
	}
}
