package compare

import (
	"fmt"
	"math"
)

// decide adjusts every row's p-value for the number of tests, calls each
// row significant or not, and warns where a cell was too small to tell.
func (cmp *Comparison) decide(opts Options) {
	cmp.Tests = len(cmp.Rows)
	ps := make([]float64, len(cmp.Rows))
	for i, r := range cmp.Rows {
		ps[i] = r.P
	}
	adj := holm(ps)
	// The strictest bar a test may face under Holm: α/m for the smallest p.
	bar := opts.Alpha / float64(max(1, cmp.Tests))
	for i := range cmp.Rows {
		r := &cmp.Rows[i]
		r.AdjustedP = adj[i]
		bigEnough := r.bigEnough(opts)
		r.Significant = r.AdjustedP <= opts.Alpha && bigEnough
		r.BelowMinEffect = r.AdjustedP <= opts.Alpha && !bigEnough
		r.Direction = Same
		if r.Significant {
			r.Direction = r.direction()
		}
		r.Warnings = r.warnings(opts, bar)
	}
}

// bigEnough: the change is at least the minimum effect.
func (r *Row) bigEnough(opts Options) bool {
	c := float64(r.Change)
	if r.Metric == Latency {
		return math.Abs(c-1) >= opts.MinMedianChange
	}
	return math.Abs(c/100) >= opts.MinShareChange
}

func (r *Row) direction() Direction {
	c := float64(r.Change)
	if r.Metric == Latency {
		c-- // a ratio: above 1 is slower
	}
	switch {
	case c > 0:
		return Worse
	case c < 0:
		return Better
	}
	return Same
}

// warnings say, for a row that is not significant, when the cell was too
// small for a change of that kind to show: benchstat's "need ≥ N samples".
func (r *Row) warnings(opts Options, bar float64) []string {
	var w []string
	if r.Metric == Latency {
		if uint64(r.A.Tested) < r.A.Lookups || uint64(r.B.Tested) < r.B.Lookups {
			w = append(w, fmt.Sprintf("latency from a reservoir of %d durations per run (A has %d lookups, B %d)",
				opts.MaxSamples, r.A.Lookups, r.B.Lookups))
		}
		if need := medianCISamples(opts.Confidence); min(r.A.Tested, r.B.Tested) < need {
			w = append(w, fmt.Sprintf("need ≥ %d lookups for a %.0f %% interval of the median", need, 100*opts.Confidence))
		}
		if !r.Significant && uTestMinP(r.A.Tested, r.B.Tested) > bar {
			w = append(w, fmt.Sprintf("need ≥ %d lookups in each run to detect a change of latency at α/m = %.2g",
				uTestSamplesFor(bar), bar))
		}
		return w
	}
	if r.Significant {
		return nil
	}
	// The smallest share that can show at all among n lookups is about 3/n:
	// ask for the change seen, or the minimum effect if that was smaller.
	target := math.Max(math.Abs(r.B.Share-r.A.Share), opts.MinShareChange)
	if target == 0 {
		return w // no change, and no minimum asked for
	}
	if need := ruleOfThree(target); min(r.A.Lookups, r.B.Lookups) < need {
		w = append(w, fmt.Sprintf("need ≥ %d lookups to detect a share of %s", need, Percent(target)))
	}
	return w
}
