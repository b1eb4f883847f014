package server

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// BenchmarkHandle measures the request path of one datagram: receive
// rules, response, classification and counting. It must not allocate.
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  []byte
		src  string
	}{
		{"ipv4", build(b, stun.BindingRequest, stun.Fingerprint), "203.0.113.10:40000"},
		{"ipv6", build(b, stun.BindingRequest, stun.Fingerprint), "[2001:db8::1]:40000"},
		{"rfc5769", mustHex(b, rfc5769Request), "203.0.113.10:40000"},
		{"error420", build(b, stun.BindingRequest, stun.RawAttribute{Type: 0x7F01}), "203.0.113.10:40000"},
		{"discard", build(b, stun.BindingSuccess), "203.0.113.10:40000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(Config{Software: "stund"})
			if err != nil {
				b.Fatal(err)
			}
			sc := newScratch()
			src := netip.MustParseAddrPort(bc.src)
			var t tally
			var out [responseBufferSize]byte
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.req)))
			b.ResetTimer()
			for range b.N {
				sc.out.Raw = out[:0]
				resp, res := s.h.handle(sc, bc.req, src)
				t.add(familyOf(src.Addr()), s.classifier.Observe(src.Addr()), res, len(bc.req))
				t.out += len(resp)
				if t.out > 1<<20 {
					s.metrics.flush(transportUDP, &t)
				}
			}
		})
	}
}

// TestHandleDoesNotAllocate keeps the request path allocation-free; a
// regression fails the normal test run, not just a benchmark nobody reads.
func TestHandleDoesNotAllocate(t *testing.T) {
	s, err := New(Config{Software: "stund"})
	if err != nil {
		t.Fatal(err)
	}
	sc := newScratch()
	src := netip.MustParseAddrPort("[2001:db8::1]:40000")
	var tl tally
	var out [responseBufferSize]byte
	for name, req := range map[string][]byte{
		"rfc5769":  mustHex(t, rfc5769Request),
		"error420": build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x7F01}, stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 6}}),
		"discard":  build(t, stun.BindingSuccess),
	} {
		allocs := testing.AllocsPerRun(1000, func() {
			sc.out.Raw = out[:0]
			_, res := s.h.handle(sc, req, src)
			tl.add(familyIPv6, s.classifier.Observe(src.Addr()), res, len(req))
			s.metrics.flush(transportUDP, &tl)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, allocs)
		}
	}
}
