package report

import (
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
)

// SummarySchema names the version of summary.json; change it when a field
// changes meaning or goes away (adding one is compatible).
const SummarySchema = "labrun.dev/summary/v1"

// Summary is summary.json: docs/results-format.md documents every field.
type Summary struct {
	Schema     string             `json:"schema"`
	Run        string             `json:"run"`
	Scenario   string             `json:"scenario"`
	Env        results.Env        `json:"env"`
	Thresholds map[string]float64 `json:"thresholds"`
	Totals     Totals             `json:"totals"`
	Claims     []analyze.Claim    `json:"claims"`
	Cells      []*analyze.Cell    `json:"cells"`
	Stray      []string           `json:"stray,omitempty"` // status files of cells the scenario lacks
	// Expectations are the scenario's expect: block judged on this run.
	Expectations []expect.Result `json:"expectations,omitempty"`
}

// Totals counts cells by state, claims and expectations by verdict.
type Totals struct {
	Cells        map[results.State]int   `json:"cells"`
	Claims       map[analyze.Verdict]int `json:"claims"`
	Expectations map[expect.Verdict]int  `json:"expectations,omitempty"`
}

// NewSummary builds summary.json's content from an analysis.
func NewSummary(a *analyze.Analysis) Summary {
	s := Summary{
		Schema: SummarySchema, Run: a.Run, Scenario: a.Scenario, Env: a.Env,
		Claims: a.Claims, Cells: a.Cells, Stray: a.Stray,
		Thresholds: map[string]float64{
			"delayed_min_lookups":         analyze.DelayedMin,
			"delayed_min_share":           analyze.DelayedShare,
			"clean_min_lookups":           analyze.CleanMinCount,
			"clustered_of_slow_min":       analyze.ClusteredOfSlowMin,
			"expanded_queries_per_lookup": analyze.ExpandedQueriesMin,
			"bootstrap_resamples":         analyze.BootstrapResamples,
			"confidence_level":            analyze.ConfidenceLevel,
			"reservoir_size":              analyze.ReservoirSize,
		},
		Totals: Totals{Cells: map[results.State]int{}, Claims: map[analyze.Verdict]int{}},
	}
	for _, c := range a.Cells {
		s.Totals.Cells[c.State]++
	}
	for _, c := range a.Claims {
		s.Totals.Claims[c.Verdict]++
	}
	return s
}

// SetExpectations records the expectations judged on the run and counts
// them by verdict.
func (s *Summary) SetExpectations(rs []expect.Result) {
	s.Expectations = rs
	s.Totals.Expectations = nil
	for _, r := range rs {
		if s.Totals.Expectations == nil {
			s.Totals.Expectations = map[expect.Verdict]int{}
		}
		s.Totals.Expectations[r.Verdict]++
	}
}
