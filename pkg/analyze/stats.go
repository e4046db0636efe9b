// Package analyze turns a run's raw files into numbers: per-cell latency
// statistics in constant memory, counter deltas, each cell against its
// baseline with a bootstrap interval, and the claims of PHENOMENON.md checked
// on the run's own data.
package analyze

import (
	"hash/fnv"
	"math/rand/v2"

	"labrun.dev/labrun/pkg/sample"
)

// Thresholds of the symptom, in µs.
const (
	second        = 1_000_000
	retryTimeout  = sample.RetryTimeoutUS   // glibc's and musl's default resolver timeout
	nearTolerance = sample.RetryToleranceUS // a delay within 0.5 s of k·5 s counts as "at a 5 s multiple"
	// ReservoirSize bounds the samples kept per cell for the bootstrap.
	ReservoirSize = 4096
)

// Accumulator takes a cell's samples one at a time, in constant memory.
type Accumulator struct {
	hist      Histogram
	byResult  map[sample.Result]uint64
	atLeast1s uint64
	atLeast5s uint64
	near      [4]uint64 // near 5 s, 10 s, 15 s, ≥ 20 s
	reservoir []int64   // uniform sample of durations (Algorithm R)
	rng       *rand.Rand
}

// NewAccumulator returns an empty accumulator; seed makes its reservoir (and
// so the bootstrap) reproducible, e.g. from the cell id.
func NewAccumulator(seed string) *Accumulator {
	h := fnv.New64a()
	h.Write([]byte(seed))
	s := h.Sum64()
	return &Accumulator{
		byResult:  map[sample.Result]uint64{},
		reservoir: make([]int64, 0, ReservoirSize),
		rng:       rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
	}
}

// AddSample records one lookup.
func (a *Accumulator) AddSample(s *sample.Sample) { a.Add(s.DurationUS, s.Result) }

// Add records one lookup of d µs with result r.
func (a *Accumulator) Add(d int64, r sample.Result) {
	a.hist.Add(d)
	a.byResult[r]++
	if d >= second {
		a.atLeast1s++
	}
	if d >= retryTimeout {
		a.atLeast5s++
	}
	if k := FiveSecondMultiple(d); k >= 1 {
		a.near[min(k, 4)-1]++
	}
	n := a.hist.Count()
	if len(a.reservoir) < ReservoirSize {
		a.reservoir = append(a.reservoir, d)
	} else if j := a.rng.Uint64N(n); j < ReservoirSize {
		a.reservoir[j] = d
	}
}

// FiveSecondMultiple returns k ≥ 1 when a lookup of d µs took within 0.5 s
// of k·5 s (the symptom: k resolver timeouts waited out), and 0 otherwise.
// This is the one definition of "at a 5 s multiple"; pkg/compare uses it too.
func FiveSecondMultiple(d int64) int64 {
	if k := (d + retryTimeout/2) / retryTimeout; k >= 1 && abs(d-k*retryTimeout) <= nearTolerance {
		return k
	}
	return 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Histogram returns the latency histogram (µs).
func (a *Accumulator) Histogram() *Histogram { return &a.hist }

// Reservoir returns the retained sample of durations (µs); do not modify.
func (a *Accumulator) Reservoir() []int64 { return a.reservoir }

// Stats are a cell's latency statistics, as summary.json carries them.
type Stats struct {
	Count    uint64            `json:"count"`
	ByResult map[string]uint64 `json:"by_result"`
	Timeouts uint64            `json:"timeouts"`
	Errors   uint64            `json:"errors"`
	MeanMS   float64           `json:"mean_ms"`
	P50MS    float64           `json:"p50_ms"`
	P90MS    float64           `json:"p90_ms"`
	P99MS    float64           `json:"p99_ms"`
	P999MS   float64           `json:"p999_ms"`
	MaxMS    float64           `json:"max_ms"`
	// Shares of lookups that took at least 1 s and at least 5 s.
	ShareAtLeast1s float64 `json:"share_ge_1s"`
	ShareAtLeast5s float64 `json:"share_ge_5s"`
	AtLeast1s      uint64  `json:"ge_1s"`
	AtLeast5s      uint64  `json:"ge_5s"`
	// Lookups within 0.5 s of a multiple of 5 s: the symptom's signature.
	Near5s         uint64  `json:"near_5s"`
	Near10s        uint64  `json:"near_10s"`
	Near15s        uint64  `json:"near_15s"`
	Near20sPlus    uint64  `json:"near_20s_plus"`
	Clustered      uint64  `json:"at_5s_multiples"`
	ClusteredShare float64 `json:"share_at_5s_multiples"`
	// Of the lookups ≥ 1 s, the share at 5 s multiples (0 when none is slow).
	ClusteredOfSlow float64 `json:"slow_share_at_5s_multiples"`
	// Histogram lists the non-empty latency buckets (µs).
	Histogram []Bucket `json:"histogram"`
}

// Stats computes the statistics of what was added so far.
func (a *Accumulator) Stats() Stats {
	h := &a.hist
	n := h.Count()
	s := Stats{
		Count:     n,
		ByResult:  map[string]uint64{},
		Timeouts:  a.byResult[sample.Timeout],
		Errors:    a.byResult[sample.Error],
		MeanMS:    h.Mean() / 1000,
		P50MS:     ms(h.Quantile(0.5)),
		P90MS:     ms(h.Quantile(0.9)),
		P99MS:     ms(h.Quantile(0.99)),
		P999MS:    ms(h.Quantile(0.999)),
		MaxMS:     ms(h.Max()),
		AtLeast1s: a.atLeast1s,
		AtLeast5s: a.atLeast5s,
		Near5s:    a.near[0], Near10s: a.near[1], Near15s: a.near[2], Near20sPlus: a.near[3],
		Histogram: h.Buckets(),
	}
	for _, r := range sample.Results {
		s.ByResult[string(r)] = a.byResult[r]
	}
	for r, c := range a.byResult {
		s.ByResult[string(r)] = c // results a newer probe may add
	}
	s.Clustered = s.Near5s + s.Near10s + s.Near15s + s.Near20sPlus
	if n > 0 {
		s.ShareAtLeast1s = float64(s.AtLeast1s) / float64(n)
		s.ShareAtLeast5s = float64(s.AtLeast5s) / float64(n)
		s.ClusteredShare = float64(s.Clustered) / float64(n)
	}
	if s.AtLeast1s > 0 {
		// Lookups near 5 s are all ≥ 4.5 s, hence ≥ 1 s.
		s.ClusteredOfSlow = float64(s.Clustered) / float64(s.AtLeast1s)
	}
	return s
}

func ms(us int64) float64 { return float64(us) / 1000 }
