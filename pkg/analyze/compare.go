package analyze

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/montanaflynn/stats"
)

// Bootstrap settings: resamples per comparison and the interval's level.
const (
	BootstrapResamples = 200
	ConfidenceLevel    = 0.95
)

// Interval is a ratio (cell / baseline) with its bootstrap confidence
// interval. The bootstrap resamples each cell's reservoir (at most
// ReservoirSize lookups), so with more lookups than that the interval is
// wider than the data strictly allow: conservative, never optimistic.
type Interval struct {
	Ratio float64 `json:"ratio"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// Comparison is a cell against its baseline (same cluster, back end, names,
// load, chaos and repeat; mitigation none).
type Comparison struct {
	Baseline  string   `json:"baseline"`
	MeanRatio Interval `json:"mean_ratio"`
	P99Ratio  Interval `json:"p99_ratio"`
	Resamples int      `json:"resamples"`
	Level     float64  `json:"level"`
}

// Compare bootstraps the ratios of mean and p99 latency of cell over base
// from their reservoirs, with a generator seeded by seed. ok is false when
// either reservoir is empty or the baseline's statistic is 0.
func Compare(cell, base []int64, seed uint64) (mean, p99 Interval, ok bool) {
	if len(cell) == 0 || len(base) == 0 {
		return Interval{}, Interval{}, false
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	c, b := newResampler(cell), newResampler(base)
	cm, cp := c.stats(nil)
	bm, bp := b.stats(nil)
	if bm == 0 || bp == 0 {
		return Interval{}, Interval{}, false
	}
	means := make([]float64, BootstrapResamples)
	p99s := make([]float64, BootstrapResamples)
	for i := range BootstrapResamples {
		rcm, rcp := c.stats(rng)
		rbm, rbp := b.stats(rng)
		means[i] = ratio(rcm, rbm)
		p99s[i] = ratio(rcp, rbp)
	}
	return interval(cm/bm, means), interval(cp/bp, p99s), true
}

// resampler draws bootstrap resamples of a sorted sample as counts per
// element, so each resample's mean and p99 cost O(n) without sorting.
type resampler struct {
	sorted []float64
	counts []int32
}

func newResampler(xs []int64) *resampler {
	r := &resampler{sorted: make([]float64, len(xs)), counts: make([]int32, len(xs))}
	for i, x := range xs {
		r.sorted[i] = float64(x)
	}
	slices.Sort(r.sorted)
	return r
}

// stats returns mean and p99 (nearest rank) of a resample drawn with rng, or
// of the sample itself when rng is nil.
func (r *resampler) stats(rng *rand.Rand) (mean, p99 float64) {
	n := len(r.sorted)
	for i := range r.counts {
		r.counts[i] = 1
	}
	if rng != nil {
		clear(r.counts)
		for range n {
			r.counts[rng.IntN(n)]++
		}
	}
	var sum float64
	for i, c := range r.counts {
		sum += float64(c) * r.sorted[i]
	}
	// The p99 is the ceil(0.99n)-th smallest: n−ceil(0.99n)+1 from the top.
	need := n - int(math.Ceil(0.99*float64(n))) + 1
	for i := n - 1; i >= 0; i-- {
		need -= int(r.counts[i])
		if need <= 0 {
			p99 = r.sorted[i]
			break
		}
	}
	return sum / float64(n), p99
}

func ratio(a, b float64) float64 {
	if b == 0 {
		b = 1 // a resample of all zeros: 1 µs, the histogram's resolution
	}
	return a / b
}

// interval is the percentile interval of the bootstrap distribution.
func interval(point float64, boot []float64) Interval {
	tail := (1 - ConfidenceLevel) / 2 * 100
	lo, _ := stats.Percentile(boot, tail)
	hi, _ := stats.Percentile(boot, 100-tail)
	return Interval{Ratio: point, Low: lo, High: hi}
}
