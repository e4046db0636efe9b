package results

import (
	"fmt"
	"strings"
)

// CheckProbes compares what each probe's summary line says with the samples
// its file holds, and returns what disagrees ("" when everything does): a
// missing summary, a different count, a probe stopped early, no file at all.
// The runner records a non-empty answer as an incomplete cell; the analysis
// checks again on every report.
func CheckProbes(probes []Probe) string {
	if len(probes) == 0 {
		return "no sample files"
	}
	var problems []string
	for _, p := range probes {
		switch {
		case p.Summary == nil:
			problems = append(problems, fmt.Sprintf("%s: no summary line", p.File))
		case p.Summary.Lookups != p.Samples:
			problems = append(problems, fmt.Sprintf("%s: summary says %d lookups, file holds %d", p.File, p.Summary.Lookups, p.Samples))
		case !p.Summary.Complete:
			problems = append(problems, fmt.Sprintf("%s: the probe stopped early", p.File))
		}
	}
	return strings.Join(problems, "; ")
}
