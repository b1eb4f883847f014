package load

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/stund/stund/internal/wire"
)

// sweepEvery is how often a closed loop looks for timed-out requests, and
// the longest a worker takes to notice that sending has stopped.
const sweepEvery = 50 * time.Millisecond

// A slot holds one request in flight. The transaction ID of a request is
// salt (4 bytes, per connection), slot index (4 bytes), sequence number (4
// bytes), so a response finds its slot without a map.
type slot struct {
	// state is seq<<1|1 while the request with that sequence number is
	// outstanding, 0 otherwise.
	state atomic.Uint64
	// sentAt is when the request left, in nanoseconds since the run began.
	sentAt atomic.Int64
}

// counters are one connection's totals. The receiving goroutine updates
// most of them; in an open loop the sending goroutine updates sent and
// lost. Progress reads them concurrently.
type counters struct {
	sent, valid, lost, late, answeredInvalid, sendErrors atomic.Uint64
	invalid                                              [numReasons]atomic.Uint64
}

func (c *counters) outstanding() int64 {
	return int64(c.sent.Load()) - int64(c.valid.Load()) - int64(c.answeredInvalid.Load()) - int64(c.lost.Load())
}

func (c *counters) invalidTotal() uint64 {
	var n uint64
	for i := range c.invalid {
		n += c.invalid[i].Load()
	}

	return n
}

// worker is one UDP socket or TCP connection.
type worker struct {
	run   *runner
	salt  uint32
	slots []slot
	// mask maps a sequence number to its slot in an open loop (the slots
	// are a ring there); a closed loop reuses the slot just answered.
	mask uint32
	// seq is the next sequence number; owned by the sending goroutine.
	seq uint32

	local  netip.AddrPort
	check  MappedCheck // MappedLocal, MappedStable or MappedOff
	stable netip.AddrPort

	hist Histogram
	c    counters
	// msg is the response being validated; owned by the receiving
	// goroutine.
	msg wire.Message

	// req is the request every slot sends, with its transaction ID
	// changed; size is its length.
	req  request
	size int
	// sendBuf holds up to batch requests back to back; pending of them are
	// filled and not yet sent.
	sendBuf []byte
	pending int
	flushFn func(n int) // sends the pending requests
}

func newWorker(r *runner, salt uint32, nslots int, local netip.AddrPort, check MappedCheck) *worker {
	w := &worker{
		run:     r,
		salt:    salt,
		slots:   make([]slot, nslots),
		mask:    uint32(nslots - 1),
		local:   netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		check:   check,
		req:     r.req,
		size:    r.req.size(),
		sendBuf: make([]byte, r.cfg.batch*r.req.size()),
	}

	return w
}

// queue fills the next request for slot idx into the send buffer, marks it
// outstanding and flushes the buffer when it is full.
func (w *worker) queue(idx uint32, now int64) {
	seq := w.seq
	w.seq++
	s := &w.slots[idx]
	if old := s.state.Swap(0); old&1 != 0 {
		// Only an open loop overwrites a slot still in flight: it is as
		// old as the ring is long, so it has timed out.
		w.c.lost.Add(1)
	}
	w.req.put(w.sendBuf[w.pending*w.size:], w.salt, idx, seq)
	s.sentAt.Store(now)
	s.state.Store(uint64(seq)<<1 | 1)
	w.pending++
	if w.pending*w.size == len(w.sendBuf) {
		w.flush()
	}
}

// queueNext queues the next request of an open loop.
func (w *worker) queueNext(now int64) { w.queue(w.seq&w.mask, now) }

func (w *worker) flush() {
	if w.pending == 0 {
		return
	}
	n := w.pending
	w.pending = 0
	w.c.sent.Add(uint64(n))
	w.flushFn(n)
}

// handle validates one response received at now. It returns the slot of
// the request it answered (rightly or wrongly), or -1 when it answered
// nothing this worker is waiting for.
func (w *worker) handle(b []byte, now int64) int {
	var p parsed
	if r := parseResponse(&w.msg, b, &p); r >= 0 {
		w.c.invalid[r].Add(1)

		return -1
	}
	if p.salt != w.salt || p.slot >= uint32(len(w.slots)) {
		w.c.invalid[ReasonUnknownTransaction].Add(1)

		return -1
	}
	s := &w.slots[p.slot]
	want := uint64(p.seq)<<1 | 1
	if s.state.Load() != want {
		// Ours, but already answered or given up: late or duplicated.
		w.c.late.Add(1)

		return -1
	}
	sentAt := s.sentAt.Load()
	if !s.state.CompareAndSwap(want, 0) {
		w.c.late.Add(1)

		return -1
	}
	if r := w.judge(&p); r >= 0 {
		w.c.invalid[r].Add(1)
		w.c.answeredInvalid.Add(1)

		return int(p.slot)
	}
	w.hist.Record(time.Duration(now - sentAt))
	w.c.valid.Add(1)

	return int(p.slot)
}

// judge checks the content of a response to an outstanding request.
func (w *worker) judge(p *parsed) Reason {
	if p.typ == wire.BindingError {
		return ReasonErrorResponse
	}
	if !p.mapped.IsValid() {
		return ReasonNoMappedAddress
	}
	switch w.check {
	case MappedLocal:
		if p.mapped != w.local {
			return ReasonWrongMappedAddress
		}
	case MappedStable:
		if !w.stable.IsValid() {
			w.stable = p.mapped
		} else if p.mapped != w.stable {
			return ReasonWrongMappedAddress
		}
	}

	return -1
}

// sweep gives up on closed-loop requests older than the timeout and, while
// sending, replaces them.
func (w *worker) sweep(now int64, resend bool) {
	limit := now - int64(w.run.cfg.timeout)
	for i := range w.slots {
		s := &w.slots[i]
		st := s.state.Load()
		if st&1 == 0 || s.sentAt.Load() > limit {
			continue
		}
		if s.state.CompareAndSwap(st, 0) {
			w.c.lost.Add(1)
			if resend {
				w.queue(uint32(i), now)
			}
		}
	}
}

// abandon counts every request still outstanding as lost; called once the
// goroutines of this worker are done.
func (w *worker) abandon() {
	for i := range w.slots {
		if w.slots[i].state.Swap(0)&1 != 0 {
			w.c.lost.Add(1)
		}
	}
}

// done reports whether the receive loop may end: sending has stopped and
// every request is answered, or the drain time is over.
func (w *worker) done(now int64) bool {
	stop := w.run.stoppedAt.Load()
	if stop == 0 {
		return false
	}

	return w.c.outstanding() <= 0 || now >= stop+int64(w.run.cfg.timeout)
}

// nextDeadline is when the receive loop must wake up at the latest, in
// nanoseconds since the run began.
func (w *worker) nextDeadline(now int64) int64 {
	d := now + int64(sweepEvery)
	if stop := w.run.stoppedAt.Load(); stop != 0 {
		d = min(d, stop+int64(w.run.cfg.timeout))
	}

	return d
}

// begin starts a receive loop: in a closed loop it sends the first window.
// It returns the first deadline, which it has set on the connection.
func (w *worker) begin(closed bool, now int64, setDeadline func(time.Time) error) int64 {
	if closed {
		for i := range w.slots {
			w.queue(uint32(i), now)
		}
		w.flush()
	}
	deadline := w.nextDeadline(now)
	_ = setDeadline(w.run.at(deadline))

	return deadline
}

// tick ends one pass of a receive loop: it reports whether the worker is
// done and, at the deadline or after a wake-up, resends what timed out
// (closed loop) and sets the next deadline.
func (w *worker) tick(closed, sending, woke bool, now, deadline int64, setDeadline func(time.Time) error) (int64, bool) {
	if w.done(now) {
		return deadline, true
	}
	if now >= deadline || woke {
		if closed {
			w.sweep(now, sending)
			w.flush()
		}
		deadline = w.nextDeadline(now)
		_ = setDeadline(w.run.at(deadline))
	}

	return deadline, false
}
