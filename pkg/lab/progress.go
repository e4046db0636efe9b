package lab

import (
	"fmt"
	"strings"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/scenario"
)

// The progress lines: one when a cell starts (what runs), one when it ends
// (what was collected against what the probes said, the counters, how long
// each stage took), one for the claims at the end.

func cellPlanLine(c scenario.Cell, workers int) string {
	l := c.Load
	s := fmt.Sprintf("%s, %s, %d probe pods (%d per node × %d workers), %d in flight at %s each, %s",
		c.Backend, c.MitigationID(), l.PodsPerNode*workers, l.PodsPerNode, workers, l.Concurrency, l.Rate, l.Duration)
	if e := c.Chaos.RaceEmulator; e != nil {
		s += fmt.Sprintf(", race emulator %s (window %s)", e.Profile, e.Window)
	} else {
		s += ", bare kernel"
	}
	return s
}

func resultLine(r cellResult) string {
	st := r.Status
	s := fmt.Sprintf("%s, %d lookups from %d probes (summaries say %d), %d ≥ 4.5 s", st.State, st.Collected, st.Probes, st.Expected, r.Slow)
	if r.Drops != "" {
		s += ", " + r.Drops
	}
	if r.Stages != "" {
		s += " (" + r.Stages + ")"
	}
	if st.Reason != "" {
		s += ": " + st.Reason
	}
	return s
}

func claimsLine(a *analyze.Analysis) string {
	var parts []string
	for _, c := range a.Claims {
		if c.Verdict != analyze.NotRun {
			parts = append(parts, fmt.Sprintf("claim %d %s", c.N, c.Verdict))
		}
	}
	if len(parts) == 0 {
		return "no claim could be checked"
	}
	return strings.Join(parts, ", ")
}
