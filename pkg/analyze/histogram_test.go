package analyze

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsRoundTrip(t *testing.T) {
	// Every value falls in the bucket whose bounds contain it, and buckets
	// tile the line without gaps.
	for _, v := range []int64{0, 1, 255, 256, 257, 511, 512, 1000, 4_999_999, 5_000_000, math.MaxInt64} {
		i := bucketOf(v)
		low, width := bucketBounds(i)
		if v < low || v-low >= width {
			t.Errorf("value %d in bucket %d = [%d, +%d)", v, i, low, width)
		}
		if i >= numBuckets {
			t.Errorf("value %d: bucket %d beyond %d", v, i, numBuckets)
		}
	}
	for i := 1; i < numBuckets; i++ {
		pl, pw := bucketBounds(i - 1)
		l, _ := bucketBounds(i)
		if pl+pw != l {
			t.Fatalf("gap between buckets %d and %d: %d+%d != %d", i-1, i, pl, pw, l)
		}
	}
}

// exactQuantile is the ceil(q·n)-th smallest value.
func exactQuantile(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestQuantilesOnKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]struct {
		draw func() int64
		// analytic quantile, to check the generator and the histogram together
		quantile func(q float64) float64
	}{
		"uniform 0..10 s": {
			draw:     func() int64 { return rng.Int64N(10_000_000) },
			quantile: func(q float64) float64 { return q * 10_000_000 },
		},
		"exponential mean 2 ms": {
			draw:     func() int64 { return int64(rng.ExpFloat64() * 2000) },
			quantile: func(q float64) float64 { return -2000 * math.Log(1-q) },
		},
	}
	for name, d := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 200_000)
			for i := range vals {
				vals[i] = d.draw()
				h.Add(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				got, exact := float64(h.Quantile(q)), float64(exactQuantile(vals, q))
				if rel := math.Abs(got-exact) / exact; rel > 0.008 {
					t.Errorf("q%g = %.0f, exact %.0f (%.2f%% off, want ≤ 0.8%%)", q, got, exact, 100*rel)
				}
				if rel := math.Abs(got-d.quantile(q)) / d.quantile(q); rel > 0.05 {
					t.Errorf("q%g = %.0f, analytic %.0f (%.1f%% off)", q, got, d.quantile(q), 100*rel)
				}
			}
			if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), len(vals), vals[0], vals[len(vals)-1])
			}
			var sum int64
			for _, v := range vals {
				sum += v
			}
			if h.Mean() != float64(sum)/float64(len(vals)) {
				t.Errorf("mean %f is not exact", h.Mean())
			}
		})
	}
}

func TestCountAtLeastAndMerge(t *testing.T) {
	var a, b Histogram
	for _, v := range []int64{10, 900_000, 1_000_000, 5_000_000, 5_000_100} {
		a.Add(v)
	}
	b.Add(-5) // counts as 0
	b.Add(12_000_000)
	a.Merge(&b)
	if got := a.CountAtLeast(1_000_000); got != 4 {
		t.Errorf("≥ 1 s = %d, want 4", got)
	}
	if got := a.CountAtLeast(5_000_000); got != 3 {
		t.Errorf("≥ 5 s = %d, want 3", got)
	}
	if a.Count() != 7 || a.Min() != 0 || a.Max() != 12_000_000 {
		t.Errorf("merged count/min/max = %d/%d/%d", a.Count(), a.Min(), a.Max())
	}
	var n uint64
	for _, bk := range a.Buckets() {
		n += bk.Count
	}
	if n != 7 {
		t.Errorf("buckets hold %d values, want 7", n)
	}
}
