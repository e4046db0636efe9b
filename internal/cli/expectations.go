package cli

import (
	"errors"
	"fmt"
	"io"

	"labrun.dev/labrun/pkg/expect"
)

// judge prints the expectations judged on a run, on w (stdout: they are
// results), and returns what the command ends with: nil when every one is
// met; an error wrapping ErrExpectation (exit 3) when some are broken and
// every other was evaluated; a plain error (exit 1) when any could not be
// evaluated, because a run that did not measure what an expectation needs
// must never read as met nor as "only an expectation broken"
// (docs/exit-codes.md).
func judge(w io.Writer, rs []expect.Result) error {
	if len(rs) == 0 {
		return nil
	}
	var broken, notEvaluated int
	met := map[string][]expect.Result{}
	var order []string
	for _, r := range rs {
		switch r.Verdict {
		case expect.Met:
			if _, ok := met[r.Name]; !ok {
				order = append(order, r.Name)
			}
			met[r.Name] = append(met[r.Name], r)
		case expect.Broken:
			broken++
		default:
			notEvaluated++
		}
	}
	// Met ones briefly, one line per expectation however many cells it
	// matched; then each broken or unjudged one with what was measured.
	for _, name := range order {
		ms := met[name]
		switch {
		case len(ms) > 1:
			fmt.Fprintf(w, "expectation met: %s (%d cells)\n", name, len(ms))
		case ms[0].Cell != "":
			fmt.Fprintf(w, "expectation met: %s: measured %s\n", name, ms[0].Measured)
		default:
			fmt.Fprintf(w, "expectation met: %s\n", name)
		}
	}
	for _, r := range rs {
		switch r.Verdict {
		case expect.Broken:
			fmt.Fprintf(w, "expectation broken: %s: measured %s%s (%s)\n", r.Name, r.Measured, inCell(r), r.Source)
		case expect.NotEvaluated:
			fmt.Fprintf(w, "expectation not evaluated: %s%s: %s (%s)\n", r.Name, inCell(r), r.Reason, r.Source)
		}
	}
	fmt.Fprintf(w, "expectations: %s\n", expect.Tally(rs))
	var errs []error
	if notEvaluated > 0 {
		errs = append(errs, fmt.Errorf("%d of %d expectations not evaluated: the run did not measure what they need", notEvaluated, len(rs)))
	}
	if broken > 0 {
		errs = append(errs, fmt.Errorf("%d of %d expectations broken: %w", broken, len(rs), ErrExpectation))
	}
	return errors.Join(errs...)
}

func inCell(r expect.Result) string {
	if r.Cell == "" {
		return ""
	}
	return " in cell " + r.Cell
}
