package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in a bucket whose range contains it, buckets are
	// contiguous, and a bucket is at most 1/128 of its values wide.
	prevHigh := int64(-1)
	for i := range histBuckets {
		high := int64(histHigh(i))
		low := prevHigh + 1
		if high < low {
			t.Fatalf("bucket %d: high %d < low %d", i, high, low)
		}
		if got := histIndex(uint64(low)); got != i {
			t.Fatalf("index(%d) = %d, want %d", low, got, i)
		}
		if got := histIndex(uint64(high)); got != i {
			t.Fatalf("index(%d) = %d, want %d", high, got, i)
		}
		if low >= 2*histSub && float64(high-low+1)/float64(low) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d", i, low, high, histSub)
		}
		prevHigh = high
	}
	if prevHigh != 1<<histTopBits-1 {
		t.Fatalf("top bucket ends at %d, want 2^%d-1", prevHigh, histTopBits)
	}
	if histIndex(math.MaxUint64) != histBuckets-1 || histIndex(1<<histTopBits) != histBuckets-1 {
		t.Fatal("values past the top are not clamped into the top bucket")
	}
}

func TestHistogramExactSmallValues(t *testing.T) {
	var h Histogram
	for v := 100; v >= 1; v-- {
		h.Record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.01, 1}, {0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Count() != 100 || h.Min() != 1 || h.Max() != 100 || h.Mean() != 51 { // 50.5 rounds to 51
		t.Errorf("count %d min %v max %v mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramEmptyAndExtremes(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports non-zero values")
	}
	h.Record(-5) // a clock step backwards counts as zero
	h.Record(time.Hour)
	if h.Min() != 0 || h.Max() != time.Hour {
		t.Fatalf("min %v max %v", h.Min(), h.Max())
	}
	if got := h.Quantile(1); got != time.Hour {
		t.Fatalf("p100 = %v, want exactly the max past the top bucket", got)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Fatalf("p50 = %v, want 0", got)
	}
}

// exactQuantile is the reference: the ceil(q·n)-th smallest value.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	// Several per-client histograms merged, as the runner does.
	parts := make([]Histogram, 7)
	for i := range 200_000 {
		// Log-normal around 200 µs with a long tail up to seconds.
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5 + math.Log(200_000)))
		all = append(all, d)
		parts[i%len(parts)].Record(d)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	slices.Sort(all)
	if h.Count() != uint64(len(all)) || h.Min() != all[0] || h.Max() != all[len(all)-1] {
		t.Fatalf("merged count %d min %v max %v, want %d %v %v", h.Count(), h.Min(), h.Max(), len(all), all[0], all[len(all)-1])
	}
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exactQuantile(all, q)
		got := h.Quantile(q)
		if got < want || float64(got) > float64(want)*(1+1.0/histSub) {
			t.Errorf("Quantile(%v) = %v, exact %v: outside [exact, exact·(1+1/128)]", q, got, want)
		}
	}
	var sum float64
	for _, d := range all {
		sum += float64(d)
	}
	if got, want := float64(h.Mean()), sum/float64(len(all)); math.Abs(got-want) > 1 {
		t.Errorf("Mean = %v, want %v", got, want)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i*7919) % time.Second)
	}
}
