package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/merge"
)

type mergeFlags struct {
	out  string
	copy bool
}

func newMergeCommand(s Streams) *cobra.Command {
	var f mergeFlags
	c := &cobra.Command{
		Use:   "merge RUN... -o RUN",
		Short: "Join the runs of one scenario (the shards of a sharded run) into one run, and build its report",
		Long: `Join runs of one scenario into one run directory (docs/merge.md): the shards of a sharded run
(labrun run --shard i/N), or a run and its later complement. report, compare, export and site then read
the merged run as one run.

Every RUN must hold the same resolved scenario, made by the same labrun build (env.json), and the runs'
cells must be disjoint (a not-run status repeated word for word is kept once); otherwise nothing is
written and the exit code is 2. Each cell's files are hard-linked (copied across file systems, or with
--copy); env.json joins the runs' own, which are kept whole under envs/.

A cell the scenario runs that no RUN has a status for (its shard is absent, or stopped before it) is
recorded as incomplete with the reason; stderr names the absent and incomplete shards and those cells.
The merge still succeeds with the cells it has; it fails only when no RUN has a cell result.

-o must not exist, or be an empty directory: merge never writes over a run. The run is built, report
included, in a hidden sibling directory and renamed into place last, so an interrupted merge leaves no
run behind. Then, as labrun report does, the claims and the expectations of the scenario's expect:
block are printed: exit 3 when one is broken, 1 when one could not be evaluated (docs/exit-codes.md).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.out == "" {
				return UsageError{errors.New("merge: -o RUN is required (the merged run's directory, new or empty)")}
			}
			res, err := merge.Merge(cmd.Context(), merge.Options{Inputs: args, Out: f.out, Copy: f.copy})
			if err != nil {
				var in *merge.InputError
				if errors.As(err, &in) {
					return UsageError{err}
				}
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintln(s.Err, n)
			}
			fmt.Fprintf(s.Err, "merged %d runs into %s: cells taken %d, recorded as incomplete %d; files linked %d, copied %d\n",
				len(args), res.Run.Dir, res.Cells, len(res.Missing), res.Files.Linked, res.Files.Copied)
			printReport(s.Out, res.Run, res.Analysis)
			return judge(s.Out, res.Expectations)
		},
	}
	c.Flags().StringVarP(&f.out, "out", "o", "", "the merged run's directory: must not exist, or be empty")
	c.Flags().BoolVar(&f.copy, "copy", false, "copy every file instead of hard-linking it")
	return c
}
