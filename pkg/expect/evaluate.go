package expect

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Evaluate judges spec on a run's analysis: one Result per claim
// expectation, then one per bound of each cell expectation and cell it
// matches, in the order they are written.
//
// Nothing that the run failed to measure reads as met: a matched cell that
// did not complete or has no samples gives NotEvaluated with the reason; so
// does every claim expectation when a cell the run was to measure did not
// complete, since a claim is judged on the whole run. Cells the scenario
// itself does not run (not applicable) are not matched.
func Evaluate(spec scenario.Expect, a *analyze.Analysis) []Result {
	var out []Result
	failed := failedCells(a)
	for _, ce := range spec.ClaimExpectations() {
		out = append(out, judgeClaim(ce, a, failed))
	}
	for i, ce := range spec.Cells {
		for _, side := range []struct {
			name   string
			bounds *scenario.Bounds
		}{{"max", ce.Max}, {"min", ce.Min}} {
			if side.bounds == nil {
				continue
			}
			for _, b := range boundsOf(*side.bounds, side.name == "max") {
				field := fmt.Sprintf("cells[%d].%s.%s", i, side.name, b.metric)
				for _, c := range a.Cells {
					if !c.Scenario().Runs() || !ce.Match.Matches(c.Scenario()) {
						continue
					}
					r := judgeCell(b, c)
					r.Name = ce.Match.String() + ": " + b.metric + " " + r.Bound
					r.Source = spec.Source(field)
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func failedCells(a *analyze.Analysis) []string {
	var ids []string
	for _, c := range a.Cells {
		if c.Failed() {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func judgeClaim(ce scenario.ClaimExpectation, a *analyze.Analysis, failed []string) Result {
	r := Result{Name: fmt.Sprintf("claim %d: %s", ce.N, ce.Verdict), Source: ce.Source, Metric: "claim", Bound: ce.Verdict}
	var claim *analyze.Claim
	for i := range a.Claims {
		if a.Claims[i].N == ce.N {
			claim = &a.Claims[i]
		}
	}
	switch {
	case claim == nil:
		r.Verdict, r.Reason = NotEvaluated, "the analysis has no such claim"
		return r
	case len(failed) > 0:
		r.Measured = string(claim.Verdict)
		r.Verdict = NotEvaluated
		r.Reason = fmt.Sprintf("%s did not complete, and a claim is judged on the whole run", cellList(failed))
		return r
	}
	r.Measured, r.Reason = string(claim.Verdict), claim.Evidence
	r.Verdict = Broken
	if string(claim.Verdict) == ce.Verdict {
		r.Verdict = Met
	}
	return r
}

func cellList(ids []string) string {
	const shown = 3
	s := strings.Join(ids[:min(len(ids), shown)], ", ")
	if len(ids) > shown {
		s += fmt.Sprintf(" and %d more", len(ids)-shown)
	}
	if len(ids) == 1 {
		return "cell " + s
	}
	return fmt.Sprintf("%d cells (%s)", len(ids), s)
}

// bound is one limit on one metric of a cell.
type bound struct {
	metric string
	max    bool    // an upper bound; else a lower one
	limit  float64 // in the unit measure returns
	text   string  // the limit as written
	// measure returns the cell's value in the limit's unit, written in
	// that unit, and evidence; reason is set when the cell has no value.
	measure func(c *analyze.Cell) (v float64, text, evidence, reason string)
}

// boundsOf lists b's limits in the order of scenario.Bounds.
func boundsOf(b scenario.Bounds, isMax bool) []bound {
	var out []bound
	add := func(metric string, limit float64, text string, m func(*analyze.Cell) (float64, string, string, string)) {
		out = append(out, bound{metric: metric, max: isMax, limit: limit, text: text, measure: m})
	}
	if b.P50 != nil {
		add("p50", ms(*b.P50), b.P50.String(), func(c *analyze.Cell) (float64, string, string, string) {
			return c.Stats.P50MS, format.Duration(c.Stats.P50MS), lookups(c), ""
		})
	}
	if b.P99 != nil {
		add("p99", ms(*b.P99), b.P99.String(), func(c *analyze.Cell) (float64, string, string, string) {
			return c.Stats.P99MS, format.Duration(c.Stats.P99MS), lookups(c), ""
		})
	}
	if b.ShareAt5s != nil {
		add("shareAt5s", float64(*b.ShareAt5s), b.ShareAt5s.String(), func(c *analyze.Cell) (float64, string, string, string) {
			s := c.Stats
			return s.ClusteredShare, Percent(s.ClusteredShare), fmt.Sprintf("%d of %d lookups at 5 s multiples", s.Clustered, s.Count), ""
		})
	}
	if b.HitShare != nil {
		add("hitShare", float64(*b.HitShare), b.HitShare.String(), func(c *analyze.Cell) (float64, string, string, string) {
			hits, n := c.GRPCHits(), c.Stats.Count
			share := float64(hits) / float64(n)
			return share, Percent(share), fmt.Sprintf("%d of %d calls hit (%d timed out, %d took ≥ 1 s)", hits, n, c.Stats.Timeouts, c.Stats.AtLeast1s), ""
		})
	}
	if t := b.Timeouts; t != nil && t.Percent {
		add("timeouts", t.Share(), t.String(), func(c *analyze.Cell) (float64, string, string, string) {
			share := float64(c.Stats.Timeouts) / float64(c.Stats.Count)
			return share, Percent(share), fmt.Sprintf("%d of %d lookups timed out", c.Stats.Timeouts, c.Stats.Count), ""
		})
	} else if t != nil {
		add("timeouts", t.Value, t.String(), func(c *analyze.Cell) (float64, string, string, string) {
			n := c.Stats.Timeouts
			return float64(n), strconv.FormatUint(n, 10), fmt.Sprintf("of %d lookups", c.Stats.Count), ""
		})
	}
	if b.EmulatorDrops != nil {
		add("emulatorDrops", float64(*b.EmulatorDrops), strconv.Itoa(*b.EmulatorDrops), func(c *analyze.Cell) (float64, string, string, string) {
			if c.Counters == nil || c.Counters.Emulator == nil {
				return 0, "", "", "no race emulator counters were recorded for the cell"
			}
			n := c.Counters.Emulator[analyze.EmulatorDropped]
			return float64(n), strconv.FormatUint(n, 10), fmt.Sprintf("summed over nodes; %d lookups", c.Stats.Count), ""
		})
	}
	return out
}

func judgeCell(b bound, c *analyze.Cell) Result {
	op := ">="
	if b.max {
		op = "<="
	}
	r := Result{Cell: c.ID, Metric: b.metric, Bound: op + " " + b.text}
	if !c.Measured() {
		r.Verdict, r.Reason = NotEvaluated, notMeasured(c)
		return r
	}
	v, text, evidence, reason := b.measure(c)
	if reason != "" {
		r.Verdict, r.Reason = NotEvaluated, reason
		return r
	}
	r.Measured, r.Reason = text, evidence
	holds := v >= b.limit
	if b.max {
		holds = v <= b.limit
	}
	r.Verdict = Broken
	if holds {
		r.Verdict = Met
	}
	return r
}

func notMeasured(c *analyze.Cell) string {
	switch {
	case c.State != results.Complete:
		s := "the cell is " + string(c.State)
		if c.Reason != "" {
			s += ": " + c.Reason
		}
		return s
	default:
		return "the cell completed with no samples"
	}
}

func lookups(c *analyze.Cell) string { return fmt.Sprintf("of %d lookups", c.Stats.Count) }

func ms(d scenario.Duration) float64 { return float64(time.Duration(d)) / float64(time.Millisecond) }

// Percent writes a share as a percentage with enough digits to tell a rare
// event from none: 0%, 0.0833%, 12.5%.
func Percent(share float64) string {
	return strconv.FormatFloat(100*share, 'g', 3, 64) + "%"
}
