package site

import (
	"fmt"
	"slices"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
)

// Grid is the claims grid (TestGrid's shape): one row per claim and per
// expectation, one column per run, newest left.
type Grid struct {
	Columns []Column  `json:"columns"`
	Rows    []GridRow `json:"rows"`
}

// Column is one run of the grid.
type Column struct {
	Run      string    `json:"run"`
	Date     time.Time `json:"date,omitzero"`
	Scenario string    `json:"scenario"`
	Page     string    `json:"page"`
}

// Row kinds.
const (
	RowClaim       = "claim"
	RowExpectation = "expectation"
)

// GridRow is one claim or expectation across the runs.
type GridRow struct {
	Kind string `json:"kind"`
	// Key is "claim N" or the expectation's Result.Name, the same in
	// every run of a scenario.
	Key   string     `json:"key"`
	Text  string     `json:"text"`
	Cells []GridCell `json:"cells"` // one per column
	// Flips counts changes between a passing and a failing verdict (pass ↔
	// fail, met ↔ broken) from one run to the next, oldest to newest,
	// skipping runs that did not judge it: a row that flips stands out.
	Flips int `json:"flips"`
}

// Cell classes, for colour: a verdict of either kind maps to one of them.
const (
	ClassPass   = "pass"
	ClassFail   = "fail"
	ClassNotRun = "not-run"
	ClassAbsent = "absent" // the run has no such expectation
)

// GridCell is one verdict on one run.
type GridCell struct {
	Verdict  string `json:"verdict,omitempty"`
	Class    string `json:"class"`
	Evidence string `json:"evidence,omitempty"`
}

// NewGrid lays out the claims and expectations of idx's usable runs.
func NewGrid(idx *Index) Grid {
	runs := idx.Usable()
	g := Grid{}
	for _, r := range runs {
		g.Columns = append(g.Columns, Column{Run: r.Name, Date: r.Date, Scenario: r.Scenario, Page: r.Page})
	}
	for n := 1; n < len(analyze.ClaimTexts); n++ {
		row := GridRow{Kind: RowClaim, Key: fmt.Sprintf("claim %d", n), Text: analyze.ClaimTexts[n]}
		for _, r := range runs {
			c := GridCell{Class: ClassNotRun, Verdict: string(analyze.NotRun), Evidence: "the run has no verdict for this claim"}
			if i := slices.IndexFunc(r.Claims, func(c ClaimResult) bool { return c.N == n }); i >= 0 {
				cr := r.Claims[i]
				c = GridCell{Verdict: string(cr.Verdict), Class: claimClass(cr.Verdict), Evidence: cr.Evidence}
			}
			row.Cells = append(row.Cells, c)
		}
		g.Rows = append(g.Rows, row)
	}
	// Expectations in order of first appearance, newest run first.
	var names []string
	for _, r := range runs {
		for _, e := range r.Expectations {
			if !slices.Contains(names, e.Name) {
				names = append(names, e.Name)
			}
		}
	}
	for _, name := range names {
		row := GridRow{Kind: RowExpectation, Key: name}
		for _, r := range runs {
			c := GridCell{Class: ClassAbsent}
			if i := slices.IndexFunc(r.Expectations, func(e expect.Result) bool { return e.Name == name }); i >= 0 {
				e := r.Expectations[i]
				c = GridCell{Verdict: string(e.Verdict), Class: expectClass(e.Verdict), Evidence: expectEvidence(e)}
				if row.Text == "" {
					row.Text = e.Bound
				}
			}
			row.Cells = append(row.Cells, c)
		}
		g.Rows = append(g.Rows, row)
	}
	for i := range g.Rows {
		g.Rows[i].Flips = flips(g.Rows[i].Cells)
	}
	return g
}

func claimClass(v analyze.Verdict) string {
	switch v {
	case analyze.Pass:
		return ClassPass
	case analyze.Fail:
		return ClassFail
	}
	return ClassNotRun
}

func expectClass(v expect.Verdict) string {
	switch v {
	case expect.Met:
		return ClassPass
	case expect.Broken:
		return ClassFail
	}
	return ClassNotRun
}

func expectEvidence(e expect.Result) string {
	s := fmt.Sprintf("bound %s, measured %s", orDash(e.Bound), orDash(e.Measured))
	if e.Cell != "" {
		s += " in " + e.Cell
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	return s
}

// flips counts pass/fail changes along cells given newest first.
func flips(cells []GridCell) int {
	n, last := 0, ""
	for i := len(cells) - 1; i >= 0; i-- {
		c := cells[i].Class
		if c != ClassPass && c != ClassFail {
			continue
		}
		if last != "" && c != last {
			n++
		}
		last = c
	}
	return n
}
