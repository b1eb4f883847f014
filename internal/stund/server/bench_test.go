package server

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// BenchmarkHandle measures the request path of one datagram, the steps
// every transport shares: receive rules, response, the rate limits,
// classification and counting. It must not allocate.
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
			s, err := New(Config{Software: "stund", RateLimit: RateLimit{PerSource: 1e12, Burst: 1e12}})
			if err != nil {
				b.Fatal(err)
			}
			s.debug = false // as stund runs: its loggers say when debug is off
			sc := newScratch()
			src := netip.MustParseAddrPort(bc.src)
			var t tally
			var out [responseBufferSize]byte
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.req)))
			b.ResetTimer()
			for range b.N {
				resp, _ := s.serve(transportUDP, sc, &t, out[:], bc.req, len(bc.req), src, s.limit.now())
				t.out += len(resp)
				if t.out > 1<<20 {
					s.metrics.flush(transportUDP, &t)
				}
			}
		})
	}
}

// TestHandleDoesNotAllocate keeps the request path (serve, with the rate
// limits on) allocation-free; a regression fails the normal test run, not
// just a benchmark nobody reads.
func TestHandleDoesNotAllocate(t *testing.T) {
	s, err := New(Config{Software: "stund", RateLimit: RateLimit{PerSource: 1e12, Burst: 1e12}})
	if err != nil {
		t.Fatal(err)
	}
	s.debug = false // as stund runs: its loggers say when debug is off
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
			s.serve(transportUDP, sc, &tl, out[:], req, len(req), src, s.limit.now())
			s.metrics.flush(transportUDP, &tl)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, allocs)
		}
	}
}
