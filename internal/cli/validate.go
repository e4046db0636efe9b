package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/scenario"
)

func newValidateCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files: every problem of every file, with its line",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, files []string) error {
			var errs []error
			for _, f := range files {
				sc, err := scenario.LoadFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				cells := sc.Expand()
				runs := 0
				for _, c := range cells {
					if c.Runs() {
						runs++
					}
				}
				fmt.Fprintf(s.Out, "%s: ok: %d cells (%d will run) on %d cluster shape(s)\n", f, len(cells), runs, len(scenario.Plan(cells)))
			}
			if len(errs) > 0 {
				// A line of its own for the header, so that every problem
				// line starts with FILE:LINE for editors and CI annotations
				// (main puts "labrun: " before the error).
				what := "1 scenario file does not load"
				if len(errs) > 1 {
					what = fmt.Sprintf("%d scenario files do not load", len(errs))
				}
				return UsageError{fmt.Errorf("%s:\n%w", what, errors.Join(errs...))}
			}
			return nil
		},
	}
}
