// Package expect holds a run to its scenario's expectations (the `expect:`
// block): the verdict each claim must have and bounds on cells' numbers. A
// broken expectation makes `labrun run` and `labrun report` exit with their
// own code (internal/cli: ExitExpectation).
package expect

import (
	"fmt"
	"strings"
)

// Verdict is how an expectation fared in a run.
type Verdict string

const (
	Met    Verdict = "met"
	Broken Verdict = "broken"
	// NotEvaluated: the run has nothing to judge it by (the cell did not
	// run, the claim was not run); it never counts as met.
	NotEvaluated Verdict = "not-evaluated"
)

// Result is one expectation judged on one run, as summary.json records it.
type Result struct {
	// Name says what was expected, the same in every run of a scenario, so
	// that runs can be lined up by it: "claim 3: pass",
	// "resolver=glibc mitigation=single-request-reopen: p99 <= 100ms".
	Name     string  `json:"name"`
	Source   string  `json:"source,omitempty"` // FILE:LINE of the expectation in the scenario
	Cell     string  `json:"cell,omitempty"`   // the cell it was judged on, for cell bounds
	Metric   string  `json:"metric,omitempty"` // p99, shareAt5s, hitShare, timeouts, emulatorDrops, claim
	Bound    string  `json:"bound"`            // what must hold, as written
	Measured string  `json:"measured"`         // what the run showed, in the bound's unit
	Verdict  Verdict `json:"verdict"`
	Reason   string  `json:"reason,omitempty"` // why not evaluated, or the evidence
}

// Tally counts results by verdict: "5 met, 1 broken, 2 not evaluated"
// (verdicts with no result left out).
func Tally(rs []Result) string {
	n := map[Verdict]int{}
	for _, r := range rs {
		n[r.Verdict]++
	}
	var parts []string
	for _, v := range []Verdict{Met, Broken, NotEvaluated} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[v], strings.ReplaceAll(string(v), "-", " ")))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
