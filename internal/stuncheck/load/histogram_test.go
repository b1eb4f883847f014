package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value lands in a bucket whose range holds it, buckets are
	// contiguous and their width is within 1/128 of their values.
	prevHigh := int64(-1)
	for i := range numBuckets {
		high := bucketHigh(i)
		if high <= prevHigh {
			t.Fatalf("bucket %d: high %d not above previous %d", i, high, prevHigh)
		}
		low := prevHigh + 1
		if bucketOf(low) != i || bucketOf(high) != i {
			t.Fatalf("bucket %d [%d,%d]: bucketOf gives %d and %d", i, low, high, bucketOf(low), bucketOf(high))
		}
		if low > 0 && float64(high-low)/float64(low) > 1.0/subCount {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d", i, low, high, subCount)
		}
		prevHigh = high
	}
	if prevHigh != maxValue {
		t.Fatalf("last bucket ends at %d, want %d", prevHigh, maxValue)
	}
}

func TestQuantileExact(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Count() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram not zero")
	}
	// Values below 256ns are exact.
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.01, 1}, {0.5, 50}, {0.505, 51}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%g) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if h.Min() != 1 || h.Max() != 100 || h.Mean() != 50 {
		t.Errorf("min %d max %d mean %d, want 1 100 50", h.Min(), h.Max(), h.Mean())
	}
}

func TestQuantileRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		// Log-uniform from 1µs to 1s, like RTTs under load.
		vals[i] = int64(float64(time.Microsecond) * math.Pow(1e6, rng.Float64()))
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact)/float64(exact) > 1.0/subCount {
			t.Errorf("Quantile(%g) = %d, exact %d: off by more than 1/%d", q, got, exact, subCount)
		}
	}
	if int64(h.Max()) != vals[len(vals)-1] || int64(h.Min()) != vals[0] {
		t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
}

func TestRecordClamps(t *testing.T) {
	var h Histogram
	h.Record(-5)
	h.Record(time.Duration(1) << 50)
	if h.Min() != 0 || h.Max() != time.Duration(maxValue) || h.Count() != 2 {
		t.Errorf("min %d max %d count %d", h.Min(), h.Max(), h.Count())
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for v := range 1000 {
		d := time.Duration(v) * time.Microsecond
		all.Record(d)
		if v%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Error("merging halves differs from recording everything")
	}
}

func TestRecordAllocs(t *testing.T) {
	h := new(Histogram)
	if n := testing.AllocsPerRun(100, func() { h.Record(time.Millisecond) }); n != 0 {
		t.Errorf("Record allocates %g times", n)
	}
}
