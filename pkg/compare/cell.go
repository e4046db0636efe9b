package compare

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/aclements/go-moremath/stats"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

// cellData is one run's lookups of a cell: exact counts, and the durations
// (µs) themselves up to a cap, past which a uniform reservoir (Algorithm R,
// seeded by run side and cell id, so a comparison is reproducible) stands
// for them.
type cellData struct {
	grpc    bool
	lookups uint64
	events  uint64
	xs      []float64
	max     int
	rng     *rand.Rand
}

func newCellData(side, cell string, grpc bool, maxSamples int) *cellData {
	h := fnv.New64a()
	h.Write([]byte(side + "/" + cell))
	s := h.Sum64()
	return &cellData{grpc: grpc, max: maxSamples, rng: rand.New(rand.NewPCG(s, s^0x2545f4914f6cdd1d))}
}

func (c *cellData) add(l results.Lookup) {
	c.lookups++
	if c.grpc && analyze.GRPCHit(l.DurationUS, l.Result) || !c.grpc && analyze.FiveSecondMultiple(l.DurationUS) > 0 {
		c.events++
	}
	d := float64(l.DurationUS)
	if len(c.xs) < c.max {
		c.xs = append(c.xs, d)
	} else if j := c.rng.Uint64N(c.lookups); j < uint64(c.max) {
		c.xs[j] = d
	}
}

// side sorts the durations and summarises them.
func (c *cellData) side(confidence float64) Side {
	slices.Sort(c.xs)
	s := Side{Lookups: c.lookups, Tested: len(c.xs), Events: c.events}
	if c.lookups > 0 {
		s.Share = float64(c.events) / float64(c.lookups)
	}
	n := len(c.xs)
	if n == 0 {
		return s
	}
	ci := stats.QuantileCI(n, 0.5, confidence)
	med, lo, hi := ci.SampleCI(stats.Sample{Xs: c.xs, Sorted: true})
	s.MedianMS, s.MedianLowMS, s.MedianHighMS = med/1000, Float(lo/1000), Float(hi/1000)
	// p99 by nearest rank: the ceil(0.99 n)-th smallest, as pkg/analyze.
	s.P99MS = c.xs[int(math.Ceil(0.99*float64(n)))-1] / 1000
	return s
}
