package load

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// testWorker is a worker with no socket: what it sends is recorded.
type testWorker struct {
	*worker
	sent [][stun.TransactionIDSize]byte
}

func newTestWorker(t testing.TB, check MappedCheck, nslots int, opts ...Option) *testWorker {
	t.Helper()
	cfg, err := newConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: cfg, start: time.Now(), req: newRequest(cfg.request)}
	tw := &testWorker{worker: newWorker(r, 0x01020304, nslots, netip.MustParseAddrPort("127.0.0.1:40000"), check)}
	tw.flushFn = func(n int) {
		for i := range n {
			b := tw.sendBuf[i*tw.size : (i+1)*tw.size]
			m := stun.New()
			if err := stun.Decode(append([]byte(nil), b...), m); err != nil || m.Type != stun.BindingRequest {
				t.Fatalf("request %x is not a Binding request: %v", b, err)
			}
			checkShape(t, m, cfg.request)
			tw.sent = append(tw.sent, m.TransactionID)
		}
	}

	return tw
}

// checkShape fails t unless m is a Binding request of the given shape:
// no attributes, or FINGERPRINT alone and right for its transaction ID.
func checkShape(t testing.TB, m *stun.Message, shape RequestShape) {
	t.Helper()
	switch shape {
	case RequestBare:
		if len(m.Raw) != 20 || len(m.Attributes) != 0 {
			t.Fatalf("request %x: want 20 bytes and no attributes", m.Raw)
		}
	case RequestFingerprint:
		if len(m.Raw) != 28 || len(m.Attributes) != 1 || stun.Fingerprint.Check(m) != nil {
			t.Fatalf("request %x: want 28 bytes with a right FINGERPRINT alone: %v", m.Raw, stun.Fingerprint.Check(m))
		}
	default:
		t.Fatalf("unknown shape %s", shape)
	}
}

func response(t testing.TB, tid [stun.TransactionIDSize]byte, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.NewTransactionIDSetter(tid)}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}

	return m.Raw
}

func xorAddr(a string) *stun.XORMappedAddress {
	ap := netip.MustParseAddrPort(a)

	return &stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
}

func TestHandle(t *testing.T) {
	good := xorAddr("127.0.0.1:40000")
	tests := []struct {
		name    string
		check   MappedCheck
		respond func(tid [12]byte) [][]byte
		valid   uint64
		invalid Reason // -1: none
		late    uint64
		answers bool // the request is no longer outstanding
	}{
		{"success", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, good, stun.NewSoftware("x"), stun.Fingerprint)}
		}, 1, -1, 0, true},
		{"success without fingerprint", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, good)}
		}, 1, -1, 0, true},
		{"duplicate is late", MappedLocal, func(tid [12]byte) [][]byte {
			r := response(t, tid, stun.BindingSuccess, good)

			return [][]byte{r, r}
		}, 1, -1, 1, true},
		{"unknown transaction", MappedLocal, func(tid [12]byte) [][]byte {
			tid[0] ^= 0xFF // another salt

			return [][]byte{response(t, tid, stun.BindingSuccess, good)}
		}, 0, ReasonUnknownTransaction, 0, false},
		{"slot out of range", MappedLocal, func(tid [12]byte) [][]byte {
			tid[4] = 0x7F

			return [][]byte{response(t, tid, stun.BindingSuccess, good)}
		}, 0, ReasonUnknownTransaction, 0, false},
		{"old sequence is late", MappedLocal, func(tid [12]byte) [][]byte {
			tid[11]--

			return [][]byte{response(t, tid, stun.BindingSuccess, good)}
		}, 0, -1, 1, false},
		{"bad fingerprint leaves the request waiting", MappedLocal, func(tid [12]byte) [][]byte {
			r := response(t, tid, stun.BindingSuccess, good, stun.Fingerprint)
			r[len(r)-1] ^= 1

			return [][]byte{r}
		}, 0, ReasonBadFingerprint, 0, false},
		{"error response", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingError, stun.CodeBadRequest)}
		}, 0, ReasonErrorResponse, 0, true},
		{"no mapped address", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, &stun.MappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 40000})}
		}, 0, ReasonNoMappedAddress, 0, true},
		{"wrong mapped port", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, xorAddr("127.0.0.1:40001"))}
		}, 0, ReasonWrongMappedAddress, 0, true},
		{"wrong mapped address", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, xorAddr("10.0.0.1:40000"))}
		}, 0, ReasonWrongMappedAddress, 0, true},
		{"wrong mapped address passes when not checked", MappedOff, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, xorAddr("10.0.0.1:40000"))}
		}, 1, -1, 0, true},
		{"stable accepts a NATed address", MappedStable, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, xorAddr("203.0.113.5:1024"))}
		}, 1, -1, 0, true},
		{"ipv6 mapped address", MappedStable, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingSuccess, xorAddr("[2001:db8::1]:1024"))}
		}, 1, -1, 0, true},
		{"request type", MappedLocal, func(tid [12]byte) [][]byte {
			return [][]byte{response(t, tid, stun.BindingRequest)}
		}, 0, ReasonMalformed, 0, false},
		{"garbage", MappedLocal, func([12]byte) [][]byte {
			return [][]byte{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {}, make([]byte, 20)}
		}, 0, ReasonMalformed, 0, false},
		{"truncated", MappedLocal, func(tid [12]byte) [][]byte {
			r := response(t, tid, stun.BindingSuccess, good)

			return [][]byte{r[:len(r)-4]}
		}, 0, ReasonMalformed, 0, false},
		{"attribute overruns the message", MappedLocal, func(tid [12]byte) [][]byte {
			r := response(t, tid, stun.BindingSuccess, good)
			r[23] = 40 // XOR-MAPPED-ADDRESS length

			return [][]byte{r}
		}, 0, ReasonMalformed, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorker(t, tc.check, 4)
			w.queue(2, 0)
			w.flush()
			if len(w.sent) != 1 {
				t.Fatalf("sent %d requests, want 1", len(w.sent))
			}
			answered := -1
			for _, b := range tc.respond(w.sent[0]) {
				if idx := w.handle(b, int64(time.Millisecond)); idx >= 0 {
					answered = idx
				}
			}
			if got := w.c.valid.Load(); got != tc.valid {
				t.Errorf("valid %d, want %d", got, tc.valid)
			}
			for r := range numReasons {
				want := uint64(0)
				if r == tc.invalid {
					want = 1
					if tc.name == "garbage" {
						want = 3
					}
				}
				if got := w.c.invalid[r].Load(); got != want {
					t.Errorf("invalid %s: %d, want %d", r, got, want)
				}
			}
			if got := w.c.late.Load(); got != tc.late {
				t.Errorf("late %d, want %d", got, tc.late)
			}
			if tc.answers != (answered == 2) {
				t.Errorf("answered slot %d; want the request answered: %v", answered, tc.answers)
			}
			if tc.answers != (w.c.outstanding() == 0) {
				t.Errorf("outstanding %d after the answers", w.c.outstanding())
			}
			if tc.valid == 1 && (w.hist.Count() != 1 || w.hist.Max() != time.Millisecond) {
				t.Errorf("rtt not recorded: count %d max %s", w.hist.Count(), w.hist.Max())
			}
		})
	}
}

func TestStableMapping(t *testing.T) {
	w := newTestWorker(t, MappedStable, 2)
	for i, a := range []string{"203.0.113.5:1024", "203.0.113.5:1024", "203.0.113.5:1025"} {
		w.queue(0, 0)
		w.flush()
		w.handle(response(t, w.sent[i], stun.BindingSuccess, xorAddr(a)), 1)
	}
	if w.c.valid.Load() != 2 || w.c.invalid[ReasonWrongMappedAddress].Load() != 1 {
		t.Errorf("valid %d, wrong mapped %d: want 2 and 1 (the mapping changed on the third)",
			w.c.valid.Load(), w.c.invalid[ReasonWrongMappedAddress].Load())
	}
}

func TestSweepAndAbandon(t *testing.T) {
	w := newTestWorker(t, MappedLocal, 4)
	for i := range 4 {
		w.queue(uint32(i), int64(i)*int64(time.Second))
	}
	w.flush()
	// At 2.5s with a 1s timeout, the requests sent at 0s and 1s are lost
	// and sent again.
	w.sweep(int64(2500*time.Millisecond), true)
	w.flush()
	if w.c.lost.Load() != 2 || len(w.sent) != 6 || w.c.outstanding() != 4 {
		t.Errorf("lost %d, sent %d, outstanding %d: want 2, 6, 4", w.c.lost.Load(), len(w.sent), w.c.outstanding())
	}
	// An answer to a swept request is late.
	w.handle(response(t, w.sent[0], stun.BindingSuccess, xorAddr("127.0.0.1:40000")), 1)
	if w.c.late.Load() != 1 {
		t.Errorf("late %d, want 1", w.c.late.Load())
	}
	w.abandon()
	if w.c.lost.Load() != 6 || w.c.outstanding() != 0 {
		t.Errorf("after abandon lost %d outstanding %d, want 6 and 0", w.c.lost.Load(), w.c.outstanding())
	}
}

func TestOpenLoopRingEvicts(t *testing.T) {
	w := newTestWorker(t, MappedLocal, 4)
	for range 6 {
		w.queueNext(0)
	}
	w.flush()
	// Six requests in a ring of four: the first two were overwritten.
	if w.c.lost.Load() != 2 || w.c.outstanding() != 4 {
		t.Errorf("lost %d outstanding %d, want 2 and 4", w.c.lost.Load(), w.c.outstanding())
	}
}

// TestRequestShapes: every request of a shape is that shape, with its
// own transaction ID and, for fingerprint, the FINGERPRINT of that ID
// (newTestWorker's flush decodes and checks each one).
func TestRequestShapes(t *testing.T) {
	for _, shape := range []RequestShape{RequestBare, RequestFingerprint} {
		t.Run(shape.String(), func(t *testing.T) {
			w := newTestWorker(t, MappedLocal, 8, WithRequest(shape), WithBatch(3))
			for i := range 8 {
				w.queue(uint32(i), 0)
			}
			w.flush()
			seen := map[[stun.TransactionIDSize]byte]bool{}
			for _, tid := range w.sent {
				seen[tid] = true
			}
			if len(w.sent) != 8 || len(seen) != 8 {
				t.Errorf("%d requests with %d transaction IDs, want 8 and 8", len(w.sent), len(seen))
			}
		})
	}
}

// TestHotPathAllocs: sending a request and validating its answer allocate
// nothing, whatever the request's shape.
func TestHotPathAllocs(t *testing.T) {
	for _, shape := range []RequestShape{RequestBare, RequestFingerprint} {
		t.Run(shape.String(), func(t *testing.T) {
			w := newTestWorker(t, MappedLocal, 1, WithRequest(shape))
			w.queue(0, 0)
			w.flush()
			resp := response(t, w.sent[0], stun.BindingSuccess, xorAddr("127.0.0.1:40000"), stun.NewSoftware("stund"), stun.Fingerprint)
			w.flushFn = func(int) {}
			allocs := testing.AllocsPerRun(1000, func() {
				// Answer the request in flight, then send the next one with
				// the same sequence number so that the same answer fits.
				if w.handle(resp, 5) != 0 {
					t.Fatal("response not matched")
				}
				w.seq = 0
				w.queue(0, 5)
				w.flush()
			})
			if allocs != 0 {
				t.Errorf("%g allocations per request", allocs)
			}
			if w.c.valid.Load() != 1001 {
				t.Errorf("%d valid responses, want 1001", w.c.valid.Load())
			}
		})
	}
}

func BenchmarkHandle(b *testing.B) {
	for _, shape := range []RequestShape{RequestBare, RequestFingerprint} {
		b.Run(shape.String(), func(b *testing.B) {
			w := newTestWorker(b, MappedLocal, 1, WithRequest(shape))
			w.queue(0, 0)
			w.flush()
			resp := response(b, w.sent[0], stun.BindingSuccess, xorAddr("127.0.0.1:40000"), stun.NewSoftware("stund"), stun.Fingerprint)
			w.flushFn = func(int) {}
			b.ReportAllocs()
			for b.Loop() {
				w.handle(resp, 5)
				w.seq = 0
				w.queue(0, 5)
				w.flush()
			}
		})
	}
}
