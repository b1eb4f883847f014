package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestAddressRoundTrip(t *testing.T) {
	addrs := []string{
		"192.0.2.1:32853", "0.0.0.0:0", "255.255.255.255:65535",
		"[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[::]:1", "[::1]:3478",
		"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	}
	for _, s := range addrs {
		addr := netip.MustParseAddrPort(s)
		b := NewBuilder(nil, BindingSuccess, testID)
		b.AddXORAddress(AttrXORMappedAddress, addr)
		b.AddAddress(AttrMappedAddress, addr)
		b.AddAddress(AttrResponseOrigin, addr)
		b.AddAddress(AttrOtherAddress, addr)
		b.AddFingerprint()
		raw, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		var m Message
		if err := m.Decode(raw); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := m.CheckFingerprint(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		if got, err := m.XORAddress(AttrXORMappedAddress); err != nil || got != addr {
			t.Errorf("XOR-MAPPED-ADDRESS %s (%v), want %s", got, err, addr)
		}
		for _, typ := range []AttrType{AttrMappedAddress, AttrResponseOrigin, AttrOtherAddress} {
			if got, err := m.Address(typ); err != nil || got != addr {
				t.Errorf("%s %s (%v), want %s", typ, got, err, addr)
			}
		}
		// The XOR really is applied: read as a plain address, the value
		// differs (the key is never zero).
		if got, _ := m.Address(AttrXORMappedAddress); got == addr {
			t.Errorf("%s: XOR-MAPPED-ADDRESS is sent in the clear", s)
		}
	}
}

// TestAddressLayout pins the bytes of an address attribute against a
// value laid out by hand.
func TestAddressLayout(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name string
		add  func(b *Builder)
		want []byte
	}{
		{"plain ipv4", func(b *Builder) { b.AddAddress(AttrMappedAddress, netip.MustParseAddrPort("198.51.100.7:40000")) },
			rawAttr(0x0001, addrValue(1, 40000, []byte{198, 51, 100, 7}), 0)},
		{"ipv4-mapped sent as ipv4", func(b *Builder) {
			b.AddAddress(AttrMappedAddress, netip.MustParseAddrPort("[::ffff:198.51.100.7]:40000"))
		}, rawAttr(0x0001, addrValue(1, 40000, []byte{198, 51, 100, 7}), 0)},
		{"zone dropped", func(b *Builder) { b.AddAddress(AttrMappedAddress, netip.MustParseAddrPort("[fe80::1%eth0]:1")) },
			rawAttr(0x0001, addrValue(2, 1, netip.MustParseAddr("fe80::1").AsSlice()), 0)},
		{"xor ipv6", func(b *Builder) { b.AddXORAddress(AttrXORMappedAddress, netip.AddrPortFrom(v6, 40000)) },
			rawAttr(0x0020, xorValue(addrValue(2, 40000, v6.AsSlice())), 0)},
		{"xor ipv4", func(b *Builder) { b.AddXORAddress(AttrXORMappedAddress, netip.MustParseAddrPort("198.51.100.7:40000")) },
			rawAttr(0x0020, xorValue(addrValue(1, 40000, []byte{198, 51, 100, 7})), 0)},
	}
	for _, tc := range tests {
		b := NewBuilder(nil, BindingSuccess, testID)
		tc.add(&b)
		got, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if want := rawMessage(0x0101, MagicCookie, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n%x\nwant\n%x", tc.name, got, want)
		}
	}
}

// TestBuilderLayout builds a message with every kind of attribute and
// compares it with one laid out by hand.
func TestBuilderLayout(t *testing.T) {
	b := NewBuilder(nil, BindingError, testID)
	b.AddErrorCode(420, "Unknown Attribute")
	b.AddUnknownAttributes([]AttrType{0x7F01, AttrChangeRequest, 0x0030})
	b.AddString(AttrSoftware, "stund")
	b.Add(AttrUsername, []byte("u"))
	b.Add(0x7F02, nil)
	b.AddChangeRequest(ChangeIP | ChangePort)
	got, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	want := rawMessage(0x0111, MagicCookie,
		rawAttr(0x0009, append([]byte{0, 0, 4, 20}, "Unknown Attribute"...), 0),
		rawAttr(0x000A, []byte{0x7F, 0x01, 0, 3, 0, 0x30}, 0),
		rawAttr(0x8022, []byte("stund"), 0),
		rawAttr(0x0006, []byte("u"), 0),
		rawAttr(0x7F02, nil, 0),
		rawAttr(0x0003, []byte{0, 0, 0, 6}, 0),
	)
	if !bytes.Equal(got, want) {
		t.Errorf("built\n%x\nwant\n%x", got, want)
	}
}

// TestBuilderPadsWithZeros builds into a buffer full of old bytes: the
// padding must not leak them (coturn CVE-2020-4067).
func TestBuilderPadsWithZeros(t *testing.T) {
	buf := bytes.Repeat([]byte{0xEE}, 256)
	b := NewBuilder(buf[:0], BindingSuccess, testID)
	b.AddString(AttrSoftware, "x")
	b.AddErrorCode(420, "ab")
	b.AddUnknownAttributes([]AttrType{0x7F01})
	got, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &buf[0] {
		t.Error("did not build in the buffer given")
	}
	if bytes.IndexByte(got, 0xEE) >= 0 {
		t.Errorf("old bytes leak into the message: %x", got)
	}
}

// TestBuilderAppends builds two messages one after the other in one
// slice, as a sender batching requests does.
func TestBuilderAppends(t *testing.T) {
	first := NewBuilder(make([]byte, 0, 64), BindingRequest, testID)
	first.AddFingerprint()
	out, err := first.Finish()
	if err != nil {
		t.Fatal(err)
	}
	n := len(out)
	second := NewBuilder(out, BindingRequest, TransactionID{0xFF})
	second.AddString(AttrSoftware, "abcd")
	second.AddFingerprint()
	out, err = second.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range [][]byte{out[:n], out[n:]} {
		var m Message
		if err := m.Decode(raw); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := m.CheckFingerprint(); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
}

func TestClassicBuilder(t *testing.T) {
	id := [16]byte{9, 8, 7, 6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	b := NewClassicBuilder(nil, BindingSuccess, id)
	b.AddAddress(AttrMappedAddress, netip.MustParseAddrPort("192.0.2.33:4444"))
	got, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	want := rawMessage(0x0101, 0x09080706, rawAttr(0x0001, addrValue(1, 4444, []byte{192, 0, 2, 33}), 0))
	if !bytes.Equal(got, want) {
		t.Errorf("built\n%x\nwant\n%x", got, want)
	}
	var m Message
	if err := m.DecodeAllowClassic(got); err != nil || !m.Classic() || m.ClassicTransactionID() != id {
		t.Errorf("classic %v id %x (%v)", m.Classic(), m.ClassicTransactionID(), err)
	}
}

func TestBuilderErrors(t *testing.T) {
	tests := []struct {
		name  string
		typ   MessageType
		build func(b *Builder)
		want  error
	}{
		{"type over 14 bits", 0xC001, func(*Builder) {}, ErrBadType},
		{"value too long", BindingSuccess, func(b *Builder) { b.Add(AttrSoftware, make([]byte, 65536)) }, ErrTooLong},
		{"message too long", BindingSuccess, func(b *Builder) {
			b.Add(AttrSoftware, make([]byte, 40000))
			b.AddString(AttrSoftware, strings.Repeat("x", 40000))
		}, ErrTooLong},
		// The length is a multiple of 4 of at most 65535: 65532, of which
		// 4 are the attribute header.
		{"largest message", BindingSuccess, func(b *Builder) { b.Add(AttrSoftware, make([]byte, 65528)) }, nil},
		{"one byte over the largest", BindingSuccess, func(b *Builder) { b.Add(AttrSoftware, make([]byte, 65529)) }, ErrTooLong},
		{"no room for fingerprint", BindingSuccess, func(b *Builder) {
			b.Add(AttrSoftware, make([]byte, 65528))
			b.AddFingerprint()
		}, ErrTooLong},
		{"invalid address", BindingSuccess, func(b *Builder) { b.AddXORAddress(AttrXORMappedAddress, netip.AddrPort{}) }, ErrInvalidAddress},
		{"invalid plain address", BindingSuccess, func(b *Builder) { b.AddAddress(AttrMappedAddress, netip.AddrPort{}) }, ErrInvalidAddress},
		{"error code 299", BindingError, func(b *Builder) { b.AddErrorCode(299, "") }, ErrBadErrorCode},
		{"error code 700", BindingError, func(b *Builder) { b.AddErrorCode(700, "") }, ErrBadErrorCode},
		{"after fingerprint", BindingSuccess, func(b *Builder) {
			b.AddFingerprint()
			b.AddString(AttrSoftware, "late")
		}, ErrAfterFingerprint},
		{"two fingerprints", BindingSuccess, func(b *Builder) {
			b.AddFingerprint()
			b.AddFingerprint()
		}, ErrAfterFingerprint},
		{"first error kept", BindingSuccess, func(b *Builder) {
			b.AddErrorCode(1, "")
			b.Add(AttrSoftware, make([]byte, 65536))
			b.AddAddress(AttrMappedAddress, netip.AddrPort{})
		}, ErrBadErrorCode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(nil, tc.typ, testID)
			tc.build(&b)
			raw, err := b.Finish()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if err != nil && raw != nil {
				t.Error("bytes returned with an error")
			}
			if err == nil {
				var m Message
				if err := m.Decode(raw); err != nil {
					t.Errorf("built message does not decode: %v", err)
				}
			}
		})
	}
}
