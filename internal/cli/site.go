package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/site"
)

type siteFlags struct {
	out string
}

func newSiteCommand(s Streams) *cobra.Command {
	var f siteFlags
	c := &cobra.Command{
		Use:   "site DIR... -o SITE",
		Short: "Build a static site over many runs: an index, each run's report, a claims grid and cell histories",
		Long: `Build a static site over many runs (docs/site.md). Each DIR is a run directory or a folder of runs
(results/). When SITE holds a site already, the runs of its index.json are kept and the new ones added; a run
given again replaces its earlier entry. A broken run, or one of an older format that cannot be re-analysed, is
listed with its reason and never stops the build.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.out == "" {
				return UsageError{errors.New("site: -o SITE is required (the directory to write the site to)")}
			}
			res, err := site.Build(cmd.Context(), site.Options{Inputs: args, Out: f.out, Progress: s.Err})
			if err != nil {
				if errors.Is(err, site.ErrSchema) || isInputError(err) {
					return UsageError{err}
				}
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintln(s.Err, n)
			}
			broken := 0
			for _, r := range res.Index.Runs {
				if !r.OK() {
					broken++
				}
			}
			fmt.Fprintf(s.Out, "%d runs (%d read now, %d kept from the earlier index; %d listed as not readable), %d cell histories\n",
				len(res.Index.Runs), len(res.Read), len(res.Kept), broken, len(site.Histories(res.Index)))
			fmt.Fprintln(s.Out, filepath.Join(f.out, "index.html"))
			return nil
		},
	}
	c.Flags().StringVarP(&f.out, "out", "o", "", "the site directory (created; an existing site there is extended)")
	return c
}

func isInputError(err error) bool {
	var in *site.InputError
	return errors.As(err, &in)
}
