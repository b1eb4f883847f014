package load

import (
	"math"
	"math/bits"
	"time"
)

// Histogram buckets: values below 2^(subBits+1) nanoseconds have their own
// bucket; above, every power of two is split in 2^subBits buckets, so a
// reported percentile is within 1/2^subBits (0.8%) of the true value.
const (
	subBits    = 7
	subCount   = 1 << subBits
	maxExp     = 40 - subBits - 1 // values up to 2^40 ns (about 18 minutes)
	numBuckets = (maxExp + 2) * subCount
	maxValue   = int64(1)<<40 - 1
)

// Histogram records durations in fixed log-linear buckets (the HDR
// histogram layout) with a relative error under 1%. Recording never
// allocates. The zero value is ready to use; it is not safe for concurrent
// use.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    uint64
	min    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1)

	return e*subCount + int(v>>e)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	e := i/subCount - 1
	m := int64(i - e*subCount)

	return (m+1)<<e - 1
}

// Record adds one duration; negative ones count as zero, huge ones as
// about 18 minutes.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += uint64(v)
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded duration.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}

	return time.Duration(h.sum / h.n)
}

// Quantile returns the smallest duration d such that at least a fraction q
// (0 < q ≤ 1) of the recorded durations are ≤ d, rounded up to its bucket
// (never more than the maximum recorded). It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}

			return time.Duration(v)
		}
	}

	return time.Duration(h.max)
}

// Merge adds every duration recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}
