package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/compare"
	"labrun.dev/labrun/pkg/results"
)

// compareFormats are the outputs of `labrun compare`, by --format.
var compareFormats = map[string]func(*compare.Comparison, Streams) error{
	"text": func(c *compare.Comparison, s Streams) error { return c.WriteText(s.Out) },
	"json": func(c *compare.Comparison, s Streams) error { return c.WriteJSON(s.Out) },
	"csv":  func(c *compare.Comparison, s Streams) error { return c.WriteCSV(s.Out) },
}

func newCompareCommand(s Streams) *cobra.Command {
	opts := compare.DefaultOptions()
	var format string
	c := &cobra.Command{
		Use:   "compare RUN_A RUN_B",
		Short: "Compare two runs cell by cell: which cells got significantly better or worse (docs/compare.md)",
		Long: `Compare run B against run A, cell by cell (cells matched by id): the median latency with its
confidence interval, the p99, and the share of lookups at a 5 s multiple (gRPC: calls hit by the race),
with the Mann–Whitney U test on latencies and Fisher's exact test on shares, corrected for the number of
tests by Holm–Bonferroni. A change under the minimum effect is never significant (~).
A significant regression does not change the exit code: expectations decide whether a run fails.`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			write, ok := compareFormats[format]
			if !ok {
				return UsageError{fmt.Errorf("--format %q: want text, json or csv", format)}
			}
			a, err := results.Open(args[0])
			if err != nil {
				return UsageError{err}
			}
			b, err := results.Open(args[1])
			if err != nil {
				return UsageError{err}
			}
			cmp, err := compare.Runs(a, b, opts)
			if err != nil {
				if errors.Is(err, compare.ErrNotARun) || errors.Is(err, compare.ErrOptions) {
					return UsageError{err}
				}
				return err
			}
			return write(cmp, s)
		},
	}
	f := c.Flags()
	f.StringVar(&format, "format", "text", "output: text (aligned tables), json (schema "+compare.Schema+") or csv")
	f.Float64Var(&opts.Alpha, "alpha", opts.Alpha, "family-wise significance level, Holm–Bonferroni over all tests of the comparison")
	f.Float64Var(&opts.MinMedianChange, "min-median-change", opts.MinMedianChange, "smallest relative change of the median called significant (0.05 = 5 %; 0 = any)")
	f.Float64Var(&opts.MinShareChange, "min-share-change", opts.MinShareChange, "smallest change of a share called significant (0.001 = 0.1 percentage points; 0 = any)")
	f.Float64Var(&opts.Confidence, "confidence", opts.Confidence, "level of the medians' confidence intervals")
	f.Var(pairFlag{&opts.Pairs}, "pair", "CELL_A=CELL_B: compare a cell of A with a differently named cell of B (a swapped mitigation); repeatable")
	f.IntVar(&opts.MaxSamples, "max-samples", opts.MaxSamples, "durations kept per cell and run; beyond, a seeded reservoir of this size (shares stay exact)")
	return c
}

// pairFlag collects --pair CELL_A=CELL_B into a map.
type pairFlag struct{ m *map[string]string }

func (p pairFlag) String() string {
	if p.m == nil || *p.m == nil {
		return ""
	}
	var out []string
	for a, b := range *p.m {
		out = append(out, a+"="+b)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (p pairFlag) Set(v string) error {
	a, b, ok := strings.Cut(v, "=")
	if !ok || a == "" || b == "" {
		return fmt.Errorf("%q: want CELL_A=CELL_B", v)
	}
	if *p.m == nil {
		*p.m = map[string]string{}
	}
	(*p.m)[a] = b
	return nil
}

func (pairFlag) Type() string { return "CELL_A=CELL_B" }
