package server

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the rate limits. A WebRTC client sends a handful of Binding
// requests per session; a burst of 100 and 20 a second after it leave
// hundreds of clients behind one CGNAT address untouched, while a single
// source flooding with forged addresses gets at most 20 answers a second:
// whatever it sends, the victim receives about 1 KiB/s.
const (
	DefaultRateLimit      = 20
	DefaultRateLimitBurst = 100
	// limiterSlots is the size of the per-source table: fixed, so that an
	// attacker with many addresses cannot make it grow.
	limiterSlots = 1 << 16
)

// RateLimit configures per-source and global token buckets. A zero rate
// turns that limit off.
type RateLimit struct {
	// PerSource is the sustained answers per second to one source IP;
	// Burst is how many it may get at once.
	PerSource float64
	Burst     float64
	// Global caps the answers per second of the whole server.
	Global float64
	// Exempt lists sources never limited: known NAT pools, or a load
	// balancer that SNATs every client to its own address.
	Exempt []netip.Prefix
}

// limiter holds the token buckets. Buckets live in a fixed table indexed
// by a keyed hash of the source address; a source whose slot another
// address took starts again with a full bucket, which can only make the
// limiter more lenient, never wrong about who it blocks.
type limiter struct {
	cfg     RateLimit
	seed    maphash.Seed
	slots   []bucketSlot
	global  bucketSlot
	start   time.Time
	lastLog atomic.Int64
}

type bucketSlot struct {
	mu     sync.Mutex
	addr   [16]byte
	used   bool
	tokens float64
	last   int64 // nanoseconds since limiter.start
}

func newLimiter(cfg RateLimit) *limiter {
	if cfg.PerSource <= 0 && cfg.Global <= 0 {
		return nil
	}
	if cfg.Burst < 1 {
		cfg.Burst = max(1, cfg.PerSource)
	}
	l := &limiter{cfg: cfg, seed: maphash.MakeSeed(), start: time.Now()}
	if cfg.PerSource > 0 {
		l.slots = make([]bucketSlot, limiterSlots)
	}
	l.global.tokens = max(1, cfg.Global)

	return l
}

// now returns the monotonic time the buckets count in.
func (l *limiter) now() int64 { return int64(time.Since(l.start)) }

// allow takes one token for an answer to src at time now; it reports
// which limit refused it, if one did.
func (l *limiter) allow(src netip.Addr, now int64) reason {
	src = src.Unmap()
	if l.slots != nil && !l.exempt(src) {
		key := src.As16()
		s := &l.slots[maphash.Bytes(l.seed, key[:])&(limiterSlots-1)]
		s.mu.Lock()
		if !s.used || s.addr != key {
			s.used, s.addr, s.tokens, s.last = true, key, l.cfg.Burst, now
		}
		ok := take(s, now, l.cfg.PerSource, l.cfg.Burst)
		s.mu.Unlock()
		if !ok {
			return reasonRateLimited
		}
	}
	if l.cfg.Global > 0 {
		l.global.mu.Lock()
		ok := take(&l.global, now, l.cfg.Global, max(1, l.cfg.Global))
		l.global.mu.Unlock()
		if !ok {
			return reasonGlobalRateLimited
		}
	}

	return reasonNone
}

// take refills s for the time since its last use and takes a token.
func take(s *bucketSlot, now int64, rate, burst float64) bool {
	if elapsed := now - s.last; elapsed > 0 {
		s.tokens = min(burst, s.tokens+float64(elapsed)*rate/1e9)
		s.last = now
	}
	if s.tokens < 1 {
		return false
	}
	s.tokens--

	return true
}

func (l *limiter) exempt(a netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return true
		}
	}

	return false
}

// shouldLog reports whether a rate-limit warning may be written now: at
// most one every ten seconds, so a flood cannot flood the log.
func (l *limiter) shouldLog(now int64) bool {
	const every = int64(10 * time.Second)
	last := l.lastLog.Load()
	if last != 0 && now-last < every {
		return false
	}

	return l.lastLog.CompareAndSwap(last, max(now, 1))
}
