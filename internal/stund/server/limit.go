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
	// DefaultIPv6Prefix is the prefix length an IPv6 source is limited
	// on: a /64 is what one subscriber, host or attacker holds at least,
	// and can rotate its source through at will.
	DefaultIPv6Prefix = 64
	// MinIPv6Prefix and MaxIPv6Prefix bound RateLimit.IPv6Prefix: from a
	// site's /48 to single addresses.
	MinIPv6Prefix = 48
	MaxIPv6Prefix = 128
	// limiterSlots is the size of the per-source table: fixed, so that an
	// attacker with many addresses cannot make it grow.
	limiterSlots = 1 << 16
	// limiterWays is how many sources share a set of the table: a source
	// keeps its bucket until its set holds that many busier ones.
	limiterWays = 8
	limiterSets = limiterSlots / limiterWays
)

// RateLimit configures per-source and global token buckets. A zero rate
// turns that limit off.
type RateLimit struct {
	// PerSource is the sustained answers per second to one source;
	// Burst is how many it may get at once.
	PerSource float64
	Burst     float64
	// Global caps the answers per second of the whole server.
	Global float64
	// Exempt lists sources never limited, by the buckets or by the TCP
	// per-source cap: known NAT pools, or a load balancer that SNATs every
	// client to its own address.
	Exempt []netip.Prefix
	// IPv6Prefix is the prefix length that makes one IPv6 source for the
	// buckets and the TCP per-source cap: every address of a /64 shares
	// one budget by default. From MinIPv6Prefix to MaxIPv6Prefix (one
	// budget per address); zero means DefaultIPv6Prefix. IPv4 sources are
	// always single addresses.
	IPv6Prefix int
}

// sourceKey returns the source the per-source limits count a as: an IPv4
// address (IPv4-mapped ones unmapped), or the IPv6 prefix it is in, as
// the prefix's first address.
func (r *RateLimit) sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	bits := r.IPv6Prefix
	if bits == 0 {
		bits = DefaultIPv6Prefix
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a.WithZone("")
	}

	return p.Addr()
}

// sourceName names the source the per-source limits count a as, for
// logs: an IPv4 address, or the IPv6 prefix it is in.
func (r *RateLimit) sourceName(a netip.Addr) string {
	key := r.sourceKey(a)
	if !key.Is6() {
		return key.String()
	}
	bits := r.IPv6Prefix
	if bits == 0 {
		bits = DefaultIPv6Prefix
	}

	return netip.PrefixFrom(key, bits).String()
}

// exempt reports whether a is spared every per-source limit.
func (r *RateLimit) exempt(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.Exempt {
		if p.Contains(a) {
			return true
		}
	}

	return false
}

// limiter holds the token buckets.
//
// Per-source buckets live in a fixed table: a keyed hash of the source
// picks a set of limiterWays buckets, and a source not in its set takes
// the place of the one with the most tokens. Whatever the collisions, no
// source ever gets more than its own budget: a bucket is only forgotten
// with its tokens recorded in the set's floor, and a source entering a
// set starts from that floor, never from more. The floor is at most what
// any source forgotten there has (it refills at the same rate), so an
// attacker cannot unblock itself, or refill a victim whose address it
// forges, by pushing the bucket out with colliding addresses. A bucket
// refilled to the full burst says nothing a new one would not, so the
// idlest goes first and, until a set holds limiterWays busy sources at
// once, the floor stays at the full burst and newcomers lose nothing.
type limiter struct {
	cfg     RateLimit
	seed    maphash.Seed
	sets    []bucketSet
	global  bucket
	globMu  sync.Mutex
	start   time.Time
	lastLog atomic.Int64
}

// bucketSet is one set of the table.
type bucketSet struct {
	mu    sync.Mutex
	ways  [limiterWays]bucket
	floor bucket // key unused: what a source entering the set starts with
}

// bucket is a token bucket; key is its source, zero when unused.
type bucket struct {
	key    [16]byte
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
		l.sets = make([]bucketSet, limiterSets)
		for i := range l.sets {
			l.sets[i].floor.tokens = cfg.Burst
		}
	}
	l.global.tokens = max(1, cfg.Global)

	return l
}

// now returns the monotonic time the buckets count in.
func (l *limiter) now() int64 { return int64(time.Since(l.start)) }

// setOf returns the index of the set that holds key's bucket.
func (l *limiter) setOf(key [16]byte) int {
	return int(maphash.Bytes(l.seed, key[:]) % limiterSets)
}

// allow takes one token for an answer to src at time now; it reports
// which limit refused it, if one did.
func (l *limiter) allow(src netip.Addr, now int64) reason {
	if l.sets != nil && !l.cfg.exempt(src) {
		key := l.cfg.sourceKey(src).As16()
		set := &l.sets[l.setOf(key)]
		set.mu.Lock()
		b := set.lookup(key, now, l.cfg.PerSource, l.cfg.Burst)
		ok := take(b, now, l.cfg.PerSource, l.cfg.Burst)
		set.mu.Unlock()
		if !ok {
			return reasonRateLimited
		}
	}
	if l.cfg.Global > 0 {
		l.globMu.Lock()
		ok := take(&l.global, now, l.cfg.Global, max(1, l.cfg.Global))
		l.globMu.Unlock()
		if !ok {
			return reasonGlobalRateLimited
		}
	}

	return reasonNone
}

// lookup returns key's bucket in the set, making room for it when it has
// none: the bucket with the most tokens (the idlest) is forgotten, and
// the floor drops to what it had, so that whoever it belonged to gets no
// more than that when it comes back. The newcomer starts from the floor.
// The caller holds the set's lock.
func (set *bucketSet) lookup(key [16]byte, now int64, rate, burst float64) *bucket {
	var victim *bucket
	for i := range set.ways {
		b := &set.ways[i]
		if !b.used {
			if victim == nil || victim.used {
				victim = b
			}

			continue
		}
		if b.key == key {
			return b
		}
		refill(b, now, rate, burst)
		if victim == nil || (victim.used && (b.tokens > victim.tokens || (b.tokens == victim.tokens && b.last < victim.last))) {
			victim = b
		}
	}
	refill(&set.floor, now, rate, burst)
	if victim.used {
		set.floor.tokens = min(set.floor.tokens, victim.tokens)
	}
	*victim = bucket{key: key, used: true, tokens: set.floor.tokens, last: now}

	return victim
}

// refill adds the tokens earned since b's last use, up to burst.
func refill(b *bucket, now int64, rate, burst float64) {
	if elapsed := now - b.last; elapsed > 0 {
		b.tokens = min(burst, b.tokens+float64(elapsed)*rate/1e9)
		b.last = now
	}
}

// take refills b for the time since its last use and takes a token.
func take(b *bucket, now int64, rate, burst float64) bool {
	refill(b, now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--

	return true
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
