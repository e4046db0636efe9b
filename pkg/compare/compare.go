// Package compare compares two runs cell by cell and decides, with tests of
// significance, which cells got better or worse: benchstat's idea applied to
// labrun's results, with the 5 s symptom as a metric of its own.
//
// For each cell measured in both runs there are two rows: latency (the
// Mann–Whitney U test on every lookup's duration; the change is the ratio of
// medians) and the symptom's share (Fisher's exact test on the 2×2 table of
// lookups at a 5 s multiple, or for gRPC calls hit by the race; the change is
// the difference in percentage points). The p-values of all rows are adjusted
// together by Holm–Bonferroni, and a change smaller than a minimum effect is
// never called significant. docs/compare.md explains how to read the result.
package compare

import (
	"errors"
	"fmt"
	"math"
)

// Schema is the version of the JSON output; a field that changes meaning or
// goes away changes it, added fields do not.
const Schema = "labrun.dev/compare/v1"

// Defaults of Options.
const (
	// DefaultAlpha is the family-wise error rate of one comparison.
	DefaultAlpha = 0.05
	// DefaultMinMedianChange: a median that moves by less than 5 % is never
	// a significant change, however small its p-value (with 10⁵ lookups a
	// 1 % shift is "significant" and meaningless).
	DefaultMinMedianChange = 0.05
	// DefaultMinShareChange: a share that moves by less than 0.1 percentage
	// points is never a significant change; the claims call a cell delayed
	// from 0.1 % of lookups at 5 s multiples (analyze.DelayedShare).
	DefaultMinShareChange = 0.001
	// DefaultConfidence is the level of the medians' intervals.
	DefaultConfidence = 0.95
	// DefaultMaxSamples caps the latencies kept per cell and run (8 MiB
	// each): beyond it a seeded reservoir of this size stands for them in
	// the median, p99 and U test. Counts and shares are always exact.
	DefaultMaxSamples = 1 << 20
)

// Options are the thresholds of a comparison: start from DefaultOptions.
// A minimum change of 0 leaves the decision to the tests alone.
type Options struct {
	Alpha           float64 `json:"alpha"`
	MinMedianChange float64 `json:"min_median_change"` // relative: 0.05 is 5 %
	MinShareChange  float64 `json:"min_share_change"`  // absolute: 0.001 is 0.1 percentage points
	Confidence      float64 `json:"confidence"`
	MaxSamples      int     `json:"max_samples"`
	// Pairs compare a cell of A with a differently named cell of B (A's id
	// → B's id): what a scenario that swapped a mitigation needs, e.g.
	// default_glibc_single-request-reopen → default_glibc_none. Paired
	// cells are not matched by id.
	Pairs map[string]string `json:"pairs,omitempty"`
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{Alpha: DefaultAlpha, MinMedianChange: DefaultMinMedianChange, MinShareChange: DefaultMinShareChange,
		Confidence: DefaultConfidence, MaxSamples: DefaultMaxSamples}
}

// validate checks every field; a zero Options is refused (start from
// DefaultOptions), so 0 can mean "no minimum effect".
func (o Options) validate() error {
	var errs []error
	if !(o.Alpha > 0 && o.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha %v: want a level in (0, 1), e.g. 0.05", o.Alpha))
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		errs = append(errs, fmt.Errorf("confidence %v: want a level in (0, 1), e.g. 0.95", o.Confidence))
	}
	if o.MinMedianChange < 0 || math.IsNaN(o.MinMedianChange) {
		errs = append(errs, fmt.Errorf("minimum median change %v: want ≥ 0, e.g. 0.05 for 5 %%", o.MinMedianChange))
	}
	if o.MinShareChange < 0 || o.MinShareChange >= 1 || math.IsNaN(o.MinShareChange) {
		errs = append(errs, fmt.Errorf("minimum share change %v: want a share in [0, 1), e.g. 0.001 for 0.1 percentage points", o.MinShareChange))
	}
	if o.MaxSamples < 2 {
		errs = append(errs, fmt.Errorf("max samples %d: want at least 2", o.MaxSamples))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrOptions, errors.Join(errs...))
	}
	return nil
}

// ErrOptions is wrapped by the error of Runs when an option is out of range.
var ErrOptions = errors.New("invalid comparison options")

// Metric is what a row compares.
type Metric string

const (
	// Latency: lookup durations; Mann–Whitney U, change = ratio of medians.
	Latency Metric = "latency"
	// Share5s: the share of lookups at a 5 s multiple
	// (analyze.FiveSecondMultiple); Fisher's exact test, change in points.
	Share5s Metric = "share_at_5s"
	// HitShare: for gRPC back ends, the share of calls hit by the race
	// (analyze.GRPCHit: timed out or took ≥ 1 s); Fisher's exact test.
	HitShare Metric = "grpc_hit_share"
)

// Direction is where a significant change went; Same when not significant.
type Direction string

const (
	Better Direction = "better"
	Worse  Direction = "worse"
	Same   Direction = "same"
)

// Float is a float64 that encodes to JSON as null when it is not finite
// (an interval too wide for the sample, a ratio over a zero median).
type Float float64

// MarshalJSON writes null for NaN and ±Inf, which JSON cannot carry.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return fmt.Appendf(nil, "%v", v), nil
}

// Side is one run's numbers for a cell.
type Side struct {
	Lookups uint64 `json:"lookups"`
	// Tested is how many durations the median, p99 and U test used: all of
	// them, or a reservoir of Options.MaxSamples.
	Tested int `json:"tested"`
	// The median with its order-statistic confidence interval (±Inf, null
	// in JSON, when the cell has too few lookups for one at that level).
	MedianMS     float64 `json:"median_ms"`
	MedianLowMS  Float   `json:"median_low_ms"`
	MedianHighMS Float   `json:"median_high_ms"`
	P99MS        float64 `json:"p99_ms"`
	// Events are the lookups of the cell's symptom (at a 5 s multiple, or
	// gRPC calls hit); Share = Events / Lookups. Always exact.
	Events uint64  `json:"events"`
	Share  float64 `json:"share"`
}

// Row is one test on one cell.
type Row struct {
	Cell    string `json:"cell"`
	Backend string `json:"backend"`
	Metric  Metric `json:"metric"`
	A       Side   `json:"a"`
	B       Side   `json:"b"`
	// Change is B against A: the ratio of medians for Latency (1.10 is 10 %
	// slower), the difference of shares in percentage points otherwise.
	Change Float `json:"change"`
	// P is the test's two-sided p-value; AdjustedP is after Holm–Bonferroni
	// over all rows of the comparison.
	P         float64 `json:"p"`
	AdjustedP float64 `json:"adjusted_p"`
	// Significant: AdjustedP ≤ α and the change is at least the minimum
	// effect. BelowMinEffect marks rows that only the minimum kept out.
	Significant    bool      `json:"significant"`
	BelowMinEffect bool      `json:"below_min_effect"`
	Direction      Direction `json:"direction"`
	// Warnings say when the cell had too few lookups to show a change.
	Warnings []string `json:"warnings,omitempty"`
}

// Regression reports whether the row is a significant change for the worse.
func (r Row) Regression() bool { return r.Significant && r.Direction == Worse }

// Presence is a cell's state in one run.
type Presence struct {
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	Lookups uint64 `json:"lookups"`
}

// Unmeasured is a cell of both runs that one of them did not measure: its
// state is not complete, or it has no samples.
type Unmeasured struct {
	Cell string   `json:"cell"`
	A    Presence `json:"a"`
	B    Presence `json:"b"`
}

// RunInfo names a compared run.
type RunInfo struct {
	Dir      string `json:"dir"`
	Scenario string `json:"scenario"`
}

// Comparison is run B against run A.
type Comparison struct {
	Schema     string  `json:"schema"`
	A          RunInfo `json:"a"`
	B          RunInfo `json:"b"`
	Options    Options `json:"options"`
	Correction string  `json:"correction"` // "holm-bonferroni"
	Tests      int     `json:"tests"`      // the m of the correction: len(Rows)
	Rows       []Row   `json:"rows"`
	// Cells of one run's scenario only, in plan order.
	OnlyA []string `json:"only_a"`
	OnlyB []string `json:"only_b"`
	// Cells of both whose data cannot be compared.
	Unmeasured []Unmeasured `json:"unmeasured"`
}

// Correction is the name of the multiple-comparison correction used.
const Correction = "holm-bonferroni"

// Regressions returns the rows that got significantly worse: an empty
// answer is "no significant regression".
func (c *Comparison) Regressions() []Row {
	var out []Row
	for _, r := range c.Rows {
		if r.Regression() {
			out = append(out, r)
		}
	}
	return out
}

// Improvements returns the rows that got significantly better.
func (c *Comparison) Improvements() []Row {
	var out []Row
	for _, r := range c.Rows {
		if r.Significant && r.Direction == Better {
			out = append(out, r)
		}
	}
	return out
}
