package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
)

func newReportCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "report RESULTS_DIR",
		Short: "Rebuild a run's analysis, summary.json, plots and index.html from its files, without a cluster",
		Long: `Rebuild a run's analysis, summary.json, plots and index.html from its files,
without a cluster, and judge the expectations of its recorded scenario (the
expect: block): exit 3 when one is broken, 1 when one could not be evaluated
(docs/exit-codes.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			run, err := results.Open(args[0])
			if err != nil {
				return UsageError{err}
			}
			a, exps, err := report.Build(run)
			if err != nil {
				return err
			}
			printReport(s.Out, run, a)
			return judge(s.Out, exps)
		},
	}
}

// printReport prints what a rebuilt report says on stdout: the claims, the
// cells by state and the page's path (labrun report and labrun merge).
func printReport(w io.Writer, run results.RunDir, a *analyze.Analysis) {
	for _, c := range a.Claims {
		fmt.Fprintf(w, "claim %2d: %-7s %s\n", c.N, c.Verdict, c.Evidence)
	}
	states := map[results.State]int{}
	for _, c := range a.Cells {
		states[c.State]++
	}
	fmt.Fprintf(w, "%d cells: %d complete, %d incomplete, %d not run\n", len(a.Cells),
		states[results.Complete], states[results.Incomplete], states[results.NotRun])
	fmt.Fprintln(w, run.IndexPath())
}
