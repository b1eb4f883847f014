package wire

import (
	"net/netip"
	"testing"
)

// TestDecodeDoesNotAllocate keeps decoding and reading every kind of
// attribute allocation-free; a regression fails the normal test run.
func TestDecodeDoesNotAllocate(t *testing.T) {
	m := new(Message)
	var unknown [8]AttrType
	msgs := [][]byte{
		mustHex(t, vectorRequest), mustHex(t, vectorIPv4), mustHex(t, vectorIPv6),
		rawMessage(0x0111, MagicCookie, rawAttr(0x0009, []byte{0, 0, 4, 20, 'x'}, 0), rawAttr(0x000A, []byte{0x7f, 1}, 0)),
		rawMessage(0x0001, 0, rawAttr(0x0003, []byte{0, 0, 0, 6}, 0)),
		rawMessage(0x0101, MagicCookie, rawAttr(0x0001, []byte{0, 3, 0, 0}, 0)), // bad family
		{0xC0, 1, 2, 3},
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, b := range msgs {
			if err := m.DecodeAllowClassic(b); err != nil {
				continue
			}
			_, _ = m.Type(), m.TransactionID()
			_ = m.ClassicTransactionID()
			_ = m.CheckFingerprint()
			_, _ = m.XORAddress(AttrXORMappedAddress)
			_, _ = m.Address(AttrMappedAddress)
			_, _, _ = m.ErrorCode()
			_, _ = m.UnknownAttributes(unknown[:0])
			_, _ = m.Get(AttrSoftware)
			for i := range m.Len() {
				if a := m.Attr(i); a.Type == AttrChangeRequest {
					_, _ = ParseChangeRequest(a.Value)
				}
			}
			_, _ = ParseHeader(b)
		}
		_ = m.Decode(msgs[4]) // ErrBadCookie
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

// TestBuildDoesNotAllocate keeps building every kind of message into a
// buffer with room allocation-free.
func TestBuildDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 576)
	src4 := netip.MustParseAddrPort("192.0.2.1:32853")
	src6 := netip.MustParseAddrPort("[2001:db8::1]:40000")
	unknown := [2]AttrType{0x7F01, AttrChangeRequest}
	classicID := [16]byte{1}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, src := range []netip.AddrPort{src4, src6} {
			b := NewBuilder(buf[:0], BindingSuccess, testID)
			b.AddXORAddress(AttrXORMappedAddress, src)
			b.AddAddress(AttrResponseOrigin, src)
			b.AddString(AttrSoftware, "stund")
			b.AddFingerprint()
			if _, err := b.Finish(); err != nil {
				t.Fatal(err)
			}
		}
		b := NewBuilder(buf[:0], BindingError, testID)
		b.AddErrorCode(420, "Unknown Attribute")
		b.AddUnknownAttributes(unknown[:])
		b.AddFingerprint()
		_, _ = b.Finish()
		b = NewClassicBuilder(buf[:0], BindingSuccess, classicID)
		b.AddAddress(AttrMappedAddress, src4)
		_, _ = b.Finish()
		b = NewBuilder(buf[:0], BindingRequest, testID)
		b.AddChangeRequest(ChangeIP)
		b.Add(AttrUsername, buf[:0])
		_, _ = b.Finish()
		b = NewBuilder(buf[:0], BindingSuccess, testID)
		b.AddAddress(AttrMappedAddress, netip.AddrPort{}) // an error
		_, _ = b.Finish()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	raw := mustHex(b, vectorRequest)
	m := new(Message)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := m.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadResponse is what a client does with a success response:
// decode, check FINGERPRINT, read XOR-MAPPED-ADDRESS.
func BenchmarkReadResponse(b *testing.B) {
	raw := mustHex(b, vectorIPv6)
	m := new(Message)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := m.Decode(raw); err != nil {
			b.Fatal(err)
		}
		if err := m.CheckFingerprint(); err != nil {
			b.Fatal(err)
		}
		if _, err := m.XORAddress(AttrXORMappedAddress); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildSuccess is a server's Binding success response:
// XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN, SOFTWARE, FINGERPRINT.
func BenchmarkBuildSuccess(b *testing.B) {
	buf := make([]byte, 0, 576)
	src := netip.MustParseAddrPort("[2001:db8::1]:40000")
	origin := netip.MustParseAddrPort("[2001:db8::2]:3478")
	b.ReportAllocs()
	for b.Loop() {
		bl := NewBuilder(buf[:0], BindingSuccess, testID)
		bl.AddXORAddress(AttrXORMappedAddress, src)
		bl.AddAddress(AttrResponseOrigin, origin)
		bl.AddString(AttrSoftware, "stund")
		bl.AddFingerprint()
		if _, err := bl.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildRequest is the load generator's bare Binding request.
func BenchmarkBuildRequest(b *testing.B) {
	buf := make([]byte, 0, HeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		bl := NewBuilder(buf[:0], BindingRequest, testID)
		if _, err := bl.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}
