package load

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// openTick is how often an open loop sends the requests that fell due.
const openTick = time.Millisecond

type runner struct {
	cfg    config
	target netip.AddrPort
	check  MappedCheck
	req    request
	start  time.Time
	// stopping is set when no new request may be sent; stoppedAt (ns
	// since start, never 0 once set) when the last one has been sent and
	// the drain begins.
	stopping  atomic.Bool
	stoppedAt atomic.Int64
}

func (r *runner) now() int64 { return int64(time.Since(r.start)) }

func (r *runner) at(ns int64) time.Time { return r.start.Add(time.Duration(ns)) }

type conn interface {
	receive(closed bool) error
	close() error
}

// Run sends Binding requests to target until the duration is over or ctx
// is done, waits for the last answers, and returns what it measured. An
// error means the load could not start (bad options, no socket); a server
// that does not answer is a Result with no responses.
func Run(ctx context.Context, target netip.AddrPort, opts ...Option) (*Result, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if !target.IsValid() || target.Port() == 0 || target.Addr().IsUnspecified() {
		return nil, configError("target", target, "target %s: want an IP address and a port", target)
	}
	r := &runner{
		cfg:    cfg,
		target: netip.AddrPortFrom(target.Addr().Unmap(), target.Port()),
		check:  cfg.mapped,
		req:    newRequest(cfg.request),
	}
	if r.check == MappedAuto {
		r.check = MappedStable
		if r.target.Addr().IsLoopback() {
			r.check = MappedLocal
		}
	}
	closed := cfg.rate == 0
	nslots := cfg.window
	if !closed {
		// A ring long enough that a slot comes round again only after
		// the timeout, with room to spare.
		perConn := cfg.rate / float64(cfg.connections)
		need := int(math.Ceil(perConn*cfg.timeout.Seconds()*1.25)) + cfg.batch
		nslots = 1 << bits.Len(uint(max(need, 64)-1))
		if nslots > 1<<22 {
			return nil, configError("rate", cfg.rate, "rate %g with timeout %s needs too many requests in flight per connection: lower the timeout or add connections",
				cfg.rate, cfg.timeout)
		}
	}

	workers := make([]*worker, 0, cfg.connections)
	var spinners []*udpWorker
	conns := make([]conn, 0, cfg.connections)
	closeAll := func() error {
		var errs []error
		for _, c := range conns {
			errs = append(errs, c.close())
		}

		return errors.Join(errs...)
	}
	salt := rand.Uint32()
	for i := range cfg.connections {
		var (
			w *worker
			c conn
		)
		if cfg.network == "udp" {
			u, err := dialUDP(ctx, r, salt+uint32(i), nslots)
			if err != nil {
				_ = closeAll()

				return nil, err
			}
			w, c = u.worker, u
			spinners = append(spinners, u)
		} else {
			t, err := dialTCP(ctx, r, salt+uint32(i), nslots)
			if err != nil {
				_ = closeAll()

				return nil, err
			}
			w, c = t.worker, t
		}
		workers = append(workers, w)
		conns = append(conns, c)
	}
	log := cfg.logger.NewLogger("load")

	cpu0 := processCPU()
	r.start = time.Now()
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	if cfg.spin {
		// newConfig allows spinning only for a closed loop over UDP.
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.spin(spinners, errs)
			for _, err := range errs {
				if err != nil {
					log.Warnf("%v", err)
				}
			}
		}()
	} else {
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.receive(closed); err != nil {
					log.Warnf("%v", err)
					errs[i] = err
				}
			}()
		}
	}
	senderDone := make(chan struct{})
	if closed {
		close(senderDone)
	} else {
		go func() {
			defer close(senderDone)
			r.sendOpen(workers)
		}()
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if cfg.progress != nil {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			r.report(workers, progressDone)
		}()
	}

	timer := time.NewTimer(cfg.duration)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	timer.Stop()
	r.stopping.Store(true)
	stopNs := r.now()
	var validAtStop uint64
	for _, w := range workers {
		validAtStop += w.c.valid.Load()
	}
	<-senderDone
	r.stoppedAt.Store(max(r.now(), 1))
	wg.Wait()
	close(progressDone)
	progressWG.Wait()
	cpu := processCPU() - cpu0
	closeErr := closeAll()
	if closeErr != nil {
		log.Debugf("close: %v", closeErr)
	}

	res := &Result{
		Target:      r.target,
		Network:     cfg.network,
		Connections: cfg.connections,
		Request:     cfg.request,
		Spin:        cfg.spin,
		MappedCheck: r.check,
		Timeout:     cfg.timeout,
		Duration:    time.Duration(stopNs),
		ClientCPU:   cpu,
	}
	if closed {
		res.Window = cfg.window
	} else {
		res.Rate = cfg.rate
	}
	var hist Histogram
	for _, w := range workers {
		w.abandon()
		hist.Merge(&w.hist)
		res.Sent += w.c.sent.Load()
		res.Responses += w.c.valid.Load()
		res.Lost += w.c.lost.Load()
		res.Late += w.c.late.Load()
		res.SendErrors += w.c.sendErrors.Load()
		for i := range w.c.invalid {
			res.InvalidReasons[i] += w.c.invalid[i].Load()
		}
	}
	for _, n := range res.InvalidReasons {
		res.Invalid += n
	}
	for _, err := range errs {
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	if stopNs > 0 {
		res.ResponseRate = float64(validAtStop) / time.Duration(stopNs).Seconds()
		res.SendRate = float64(res.Sent) / time.Duration(stopNs).Seconds()
	}
	res.RTT = Latency{
		Min: hist.Min(), Mean: hist.Mean(), Max: hist.Max(),
		P50: hist.Quantile(0.50), P90: hist.Quantile(0.90),
		P99: hist.Quantile(0.99), P999: hist.Quantile(0.999),
	}

	return res, nil
}

// sendOpen sends, every tick, the requests that fell due at the configured
// rate since the start, spread evenly over the connections.
func (r *runner) sendOpen(ws []*worker) {
	n := uint64(len(ws))
	var scheduled uint64
	next := uint64(0)
	for !r.stopping.Load() {
		now := r.now()
		due := uint64(float64(now) * r.cfg.rate / 1e9)
		if due > scheduled {
			k := due - scheduled
			scheduled = due
			per, extra := k/n, k%n
			for i := range n {
				w := ws[(next+i)%n]
				c := per
				if i < extra {
					c++
				}
				for range c {
					w.queueNext(now)
				}
				w.flush()
			}
			next = (next + extra) % n
		}
		time.Sleep(openTick)
	}
}

// report calls the progress callback every interval until done closes.
func (r *runner) report(ws []*worker, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.progressInt)
	defer t.Stop()
	var lastValid uint64
	lastAt := time.Duration(0)
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		p := Progress{Elapsed: time.Duration(r.now()), Draining: r.stopping.Load()}
		for _, w := range ws {
			p.Sent += w.c.sent.Load()
			p.Responses += w.c.valid.Load()
			p.Invalid += w.c.invalidTotal()
			p.Lost += w.c.lost.Load()
			p.Late += w.c.late.Load()
		}
		if dt := p.Elapsed - lastAt; dt > 0 {
			p.Rate = float64(p.Responses-lastValid) / dt.Seconds()
		}
		lastValid, lastAt = p.Responses, p.Elapsed
		r.cfg.progress(p)
	}
}
