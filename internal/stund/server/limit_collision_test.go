package server

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestLimiterIPv6Prefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix int // 0: the default
		a, b   string
		shared bool // a and b draw on one bucket
	}{
		{"default: one /64 is one source", 0, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"default: the next /64 is another", 0, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"/128: every address on its own", 128, "2001:db8:1:2::1", "2001:db8:1:2::2", false},
		{"/48: the whole site is one source", 48, "2001:db8:1:2::1", "2001:db8:1:ffff::1", true},
		{"/48: the next site is another", 48, "2001:db8:1::1", "2001:db8:2::1", false},
		{"IPv4 is never a prefix", 48, "203.0.113.1", "203.0.113.2", false},
		{"IPv4-mapped is its IPv4 address", 0, "::ffff:203.0.113.1", "203.0.113.1", true},
		{"IPv4-mapped is not an IPv6 /64", 0, "::ffff:203.0.113.1", "::ffff:203.0.113.2", false},
		{"zones do not split a prefix", 0, "fe80::1%eth0", "fe80::2%eth1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(RateLimit{PerSource: 1, Burst: 1, IPv6Prefix: tc.prefix})
			a, b := netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)
			if r := l.allow(a, 0); r != reasonNone {
				t.Fatalf("first answer to %s: %s", a, r)
			}
			got := l.allow(b, 0) == reasonRateLimited
			if got != tc.shared {
				t.Errorf("%s limited after one answer to %s: %v, want %v", b, a, got, tc.shared)
			}
		})
	}
}

// TestIPv6PrefixBounds checks New's range for the prefix length.
func TestIPv6PrefixBounds(t *testing.T) {
	for _, p := range []int{-1, 1, 47, 129} {
		if _, err := New(Config{RateLimit: RateLimit{IPv6Prefix: p}}); err == nil {
			t.Errorf("IPv6Prefix %d accepted", p)
		}
	}
	for _, p := range []int{0, 48, 56, 64, 128} {
		s, err := New(Config{RateLimit: RateLimit{IPv6Prefix: p}})
		if err != nil {
			t.Errorf("IPv6Prefix %d refused: %v", p, err)

			continue
		}
		want := p
		if p == 0 {
			want = DefaultIPv6Prefix
		}
		if got := s.cfg.RateLimit.IPv6Prefix; got != want {
			t.Errorf("IPv6Prefix %d became %d, want %d", p, got, want)
		}
	}
}

// colliding returns n sources whose buckets fall in the same set as
// target's, found by brute force with the limiter's own hash. IPv6 ones
// differ in their /64, so that each is a source of its own.
func colliding(t *testing.T, l *limiter, target netip.Addr, n int, ipv6 bool) []netip.Addr {
	t.Helper()
	want := l.setOf(l.cfg.sourceKey(target).As16())
	var out []netip.Addr
	for i := uint32(1); len(out) < n; i++ {
		if i == 0 {
			t.Fatal("no colliding sources")
		}
		var a netip.Addr
		if ipv6 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 1})
		} else {
			a = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}
		if a != target && l.setOf(l.cfg.sourceKey(a).As16()) == want {
			out = append(out, a)
		}
	}

	return out
}

// TestLimiterCollisions shows that sources whose buckets fall in one set
// of the table (colliding addresses, found by brute force) cannot get
// anyone more than their own budget: an attacker cannot unblock itself
// by pushing its bucket out, nor refill a victim whose address it forges.
func TestLimiterCollisions(t *testing.T) {
	const (
		rate  = 10
		burst = 5
		ms    = int64(time.Millisecond)
	)
	for _, ipv6 := range []bool{false, true} {
		name := map[bool]string{false: "ipv4", true: "ipv6"}[ipv6]
		target := netip.MustParseAddr("203.0.113.66")
		if ipv6 {
			target = netip.MustParseAddr("2001:db8:ffff:1::66")
		}
		t.Run(name+"/attacker cannot unblock itself", func(t *testing.T) {
			l := newLimiter(RateLimit{PerSource: rate, Burst: burst})
			others := colliding(t, l, target, 4*limiterWays, ipv6)
			for range burst {
				if l.allow(target, 0) != reasonNone {
					t.Fatal("refused within the burst")
				}
			}
			// Every colliding source asks once, pushing the attacker's
			// bucket out of its set if anything can.
			for _, o := range others {
				l.allow(o, ms)
			}
			if r := l.allow(target, ms); r != reasonRateLimited {
				t.Errorf("attacker answered (%s) right after colliding sources took its place", r)
			}
		})
		t.Run(name+"/forged victim is not refilled", func(t *testing.T) {
			l := newLimiter(RateLimit{PerSource: rate, Burst: burst})
			others := colliding(t, l, target, 4*limiterWays, ipv6)
			answered := 0
			// One second of forged requests at the victim, 1000/s,
			// interleaved with a sweep of colliding sources.
			for i := range int64(1000) {
				now := i * ms
				if l.allow(target, now) == reasonNone {
					answered++
				}
				l.allow(others[i%int64(len(others))], now)
			}
			// Its budget over [0, 1s): the burst plus 10/s.
			if answered > burst+rate {
				t.Errorf("victim got %d answers in 1s, budget %d", answered, burst+rate)
			}
		})
		t.Run(name+"/idle buckets go first", func(t *testing.T) {
			l := newLimiter(RateLimit{PerSource: rate, Burst: burst})
			others := colliding(t, l, target, 2*limiterWays, ipv6)
			// limiterWays-1 sources ask once, long ago: their buckets
			// have refilled.
			for _, o := range others[:limiterWays-1] {
				l.allow(o, 0)
			}
			now := 100 * int64(time.Second)
			for range burst {
				l.allow(target, now)
			}
			// As many newcomers as there are idle places take them; the
			// busy bucket stays.
			for _, o := range others[limiterWays-1 : 2*(limiterWays-1)] {
				if n := answers(l, o, now); n != burst {
					t.Errorf("newcomer %s got %d answers, want its whole burst of %d", o, n, burst)
				}
			}
			if r := l.allow(target, now); r != reasonRateLimited {
				t.Errorf("the busy source was answered (%s): its bucket was pushed out before idle ones", r)
			}
		})
	}
}

// answers counts the answers src gets at one instant.
func answers(l *limiter, src netip.Addr, now int64) int {
	n := 0
	for l.allow(src, now) == reasonNone {
		n++
	}

	return n
}

// TestLimiterNeverOverBudget drives many colliding sources through one
// set with random traffic and checks each answer against an exact token
// bucket per source, fed only with that source's answers: the table may
// refuse more than it must, never answer more.
func TestLimiterNeverOverBudget(t *testing.T) {
	const rate, burst = 20, 10
	l := newLimiter(RateLimit{PerSource: rate, Burst: burst})
	target := netip.MustParseAddr("198.51.100.1")
	srcs := append(colliding(t, l, target, 3*limiterWays, false), target)
	exact := make(map[netip.Addr]*bucket, len(srcs))
	for _, a := range srcs {
		exact[a] = &bucket{tokens: burst}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	answered := 0
	for range 200000 {
		now += rng.Int64N(int64(2 * time.Millisecond))
		// A few sources are much busier than the rest.
		a := srcs[rng.IntN(len(srcs))]
		if rng.IntN(3) == 0 {
			a = srcs[rng.IntN(4)]
		}
		if l.allow(a, now) != reasonNone {
			continue
		}
		answered++
		if !take(exact[a], now, rate, burst) {
			t.Fatalf("answer to %s at %v is over its own budget", a, time.Duration(now))
		}
	}
	if answered == 0 {
		t.Fatal("nothing answered")
	}
}
