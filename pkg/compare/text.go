package compare

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the comparison as aligned tables, benchstat-like: one for
// latency and one for the symptom's share, then the warnings, the cells
// that could not be compared, and a one-line verdict.
func (cmp *Comparison) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	o := cmp.Options
	fmt.Fprintf(ew, "A: %s (scenario %s)\nB: %s (scenario %s)\n", cmp.A.Dir, cmp.A.Scenario, cmp.B.Dir, cmp.B.Scenario)
	fmt.Fprintf(ew, "tests: Mann–Whitney U on latencies, Fisher's exact on shares; α = %g with Holm–Bonferroni over %d tests;\n",
		o.Alpha, cmp.Tests)
	fmt.Fprintf(ew, "a change is significant only if the median moves ≥ %g%% or the share ≥ %gpp; ~ = not significant\n",
		100*o.MinMedianChange, 100*o.MinShareChange)

	if len(cmp.Rows) > 0 {
		fmt.Fprintf(ew, "\nlatency (median ± the larger half of its %.0f%% confidence interval, p99, lookups)\n", 100*o.Confidence)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "cell\tA median\t\tA p99\tA n\tB median\t\tB p99\tB n\tchange\tp\tp (Holm)")
		for _, r := range cmp.Rows {
			if r.Metric != Latency {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Cell,
				Duration(r.A.MedianMS), HalfWidth(r.A), Duration(r.A.P99MS), r.A.Lookups,
				Duration(r.B.MedianMS), HalfWidth(r.B), Duration(r.B.P99MS), r.B.Lookups,
				Verdict(r), PValue(r.P), PValue(r.AdjustedP))
		}
		tw.Flush()

		fmt.Fprintf(ew, "\n5 s symptom (share of lookups at a 5 s multiple; gRPC: share of calls hit)\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "cell\tsymptom\tA share\tA events/n\tB share\tB events/n\tchange\tp\tp (Holm)")
		for _, r := range cmp.Rows {
			if r.Metric == Latency {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%d/%d\t%s\t%s\t%s\n", r.Cell, symptomLabel(r.Metric),
				Percent(r.A.Share), r.A.Events, r.A.Lookups, Percent(r.B.Share), r.B.Events, r.B.Lookups,
				Verdict(r), PValue(r.P), PValue(r.AdjustedP))
		}
		tw.Flush()
	}

	var warned bool
	for _, r := range cmp.Rows {
		for _, msg := range r.Warnings {
			if !warned {
				fmt.Fprintln(ew, "\nwarnings:")
				warned = true
			}
			fmt.Fprintf(ew, "  %s %s: %s\n", r.Cell, r.Metric, msg)
		}
	}
	if len(cmp.OnlyA) > 0 {
		fmt.Fprintf(ew, "\nonly in A (%d): %s\n", len(cmp.OnlyA), strings.Join(cmp.OnlyA, ", "))
	}
	if len(cmp.OnlyB) > 0 {
		fmt.Fprintf(ew, "\nonly in B (%d): %s\n", len(cmp.OnlyB), strings.Join(cmp.OnlyB, ", "))
	}
	if len(cmp.Unmeasured) > 0 {
		fmt.Fprintf(ew, "\nnot measured in both runs (%d):\n", len(cmp.Unmeasured))
		for _, u := range cmp.Unmeasured {
			fmt.Fprintf(ew, "  %s: A %s; B %s\n", u.Cell, presence(u.A), presence(u.B))
		}
	}
	worse, better := len(cmp.Regressions()), len(cmp.Improvements())
	fmt.Fprintf(ew, "\n%d of %d tests significant: %d worse, %d better\n", worse+better, cmp.Tests, worse, better)
	return ew.err
}

func symptomLabel(m Metric) string {
	if m == HitShare {
		return "gRPC hit"
	}
	return "at 5 s"
}

func presence(p Presence) string {
	s := fmt.Sprintf("%s, %d lookups", p.State, p.Lookups)
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	return s
}

// errWriter keeps the first write error, so the writers check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
