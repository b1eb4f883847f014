package load

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/stund/stund/internal/wire"
)

// FuzzParseResponse: the response parser never panics, and what it
// accepts is a STUN message pion decodes too, with the same transaction
// ID and XOR-MAPPED-ADDRESS.
func FuzzParseResponse(f *testing.F) {
	tid := [stun.TransactionIDSize]byte{1, 2, 3, 4, 0, 0, 0, 2, 0, 0, 0, 9}
	f.Add(response(f, tid, stun.BindingSuccess, xorAddr("127.0.0.1:40000"), stun.NewSoftware("stund"), stun.Fingerprint))
	f.Add(response(f, tid, stun.BindingSuccess, xorAddr("[2001:db8::1]:1024")))
	f.Add(response(f, tid, stun.BindingError, stun.CodeBadRequest, stun.Fingerprint))
	f.Add(response(f, tid, stun.BindingRequest))
	f.Add([]byte{})
	var m wire.Message
	f.Fuzz(func(t *testing.T, b []byte) {
		var p parsed
		if parseResponse(&m, b, &p) >= 0 {
			return
		}
		m := stun.New()
		if err := stun.Decode(append([]byte(nil), b...), m); err != nil {
			t.Fatalf("accepted %x, pion says %v", b, err)
		}
		if binary.BigEndian.Uint32(m.TransactionID[0:]) != p.salt ||
			binary.BigEndian.Uint32(m.TransactionID[4:]) != p.slot ||
			binary.BigEndian.Uint32(m.TransactionID[8:]) != p.seq {
			t.Fatalf("transaction ID %x, parsed %x %x %x", m.TransactionID, p.salt, p.slot, p.seq)
		}
		var xor stun.XORMappedAddress
		// Compare where both decode one: pion also rejects a non-zero
		// first (reserved) byte, which RFC 8489 §14.1 says to ignore, and
		// accepts an IPv6 address cut short, which this parser refuses.
		if err := xor.GetFrom(m); err == nil && p.mapped.IsValid() {
			if want, ok := netipFrom(xor); !ok || want != p.mapped {
				t.Fatalf("mapped %s, pion %s", p.mapped, &xor)
			}
		}
	})
}

func netipFrom(x stun.XORMappedAddress) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(x.IP)
	if len(x.IP) == 16 && x.IP.To4() != nil {
		// pion hands IPv4 back in 16 bytes; an IPv4 family has 4.
		a, ok = netip.AddrFromSlice(x.IP.To4())
	}

	return netip.AddrPortFrom(a, uint16(x.Port)), ok
}
