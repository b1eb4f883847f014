package exporter

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/stund/stund/pkg/check"
)

// failedLookupRetry bounds how long a failed public IP lookup is kept:
// the next scrape after it asks again.
const failedLookupRetry = 30 * time.Second

// lookupTimeout bounds one lookup; it runs apart from the scrape that
// started it, so a short scrape timeout does not waste it.
const lookupTimeout = check.DefaultTimeout

// lookupFunc learns the public IP of a family from references.
type lookupFunc func(ctx context.Context, references []string, f check.Family) netip.Addr

// ipCache keeps the public IP per set of references and family, so that
// a scrape does not ask the reference servers each time. Concurrent
// scrapes that miss wait for one lookup.
type ipCache struct {
	lookup  lookupFunc
	now     func() time.Time
	onLook  func(f check.Family, ok bool)
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

type cacheKey struct {
	refs   string
	family check.Family
}

type cacheEntry struct {
	ready   chan struct{}
	ip      netip.Addr
	expires time.Time
}

func newIPCache(lookup lookupFunc, now func() time.Time, onLook func(check.Family, bool)) *ipCache {
	return &ipCache{lookup: lookup, now: now, onLook: onLook, entries: map[cacheKey]*cacheEntry{}}
}

// get returns the public IP of family f as references see it, from the
// cache when it is younger than ttl. It waits for a lookup in progress up
// to ctx's end; an invalid IP means unknown.
func (c *ipCache) get(ctx context.Context, references []string, f check.Family, ttl time.Duration) netip.Addr {
	key := cacheKey{refs: strings.Join(references, "\x00"), family: f}
	c.mu.Lock()
	e := c.entries[key]
	fresh := false
	if e != nil {
		select {
		case <-e.ready:
			fresh = c.now().Before(e.expires)
		default:
			fresh = true // in progress
		}
	}
	if !fresh {
		e = &cacheEntry{ready: make(chan struct{})}
		c.entries[key] = e
		go c.fill(e, references, f, ttl)
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.ip
	case <-ctx.Done():
		return netip.Addr{}
	}
}

func (c *ipCache) fill(e *cacheEntry, references []string, f check.Family, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	ip := c.lookup(ctx, references, f)
	keep := ttl
	if !ip.IsValid() {
		keep = min(ttl, failedLookupRetry)
	}
	c.mu.Lock()
	e.ip, e.expires = ip, c.now().Add(keep)
	c.mu.Unlock()
	close(e.ready)
	if c.onLook != nil {
		c.onLook(f, ip.IsValid())
	}
}
