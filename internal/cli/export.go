package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/export"
	"labrun.dev/labrun/pkg/results"
)

type exportFlags struct {
	formats       []string
	out           string
	perfdashJob   string
	perfdashBuild int64
}

func newExportCommand(s Streams) *cobra.Command {
	var f exportFlags
	c := &cobra.Command{
		Use:   "export RESULTS_DIR",
		Short: "Write a run's results for other tools: perfdash PerfData, CSV, JUnit XML, Go benchmark format, HdrHistogram logs",
		Long: `Analyses the run's files again (no cluster needed) and writes the formats asked for
under the output directory (default RESULTS_DIR/exports); the expectations come from
the run's summary.json, as the last labrun report judged them. docs/results-format.md
("Exports") describes every file.`,
		Example: `  labrun export results/baseline-20260101 --format junit --format csv
  labrun export results/baseline-20260101 --format all -o /tmp/out
  labrun export results/baseline-20260101 --format perfdash -o ~/perfdash-data   # then: perfdash --mode=local --logsPath=~/perfdash-data/perfdash --configPath=~/perfdash-data/perfdash/jobs.yaml --www`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return runExport(s, args[0], f)
		},
	}
	c.Flags().StringSliceVar(&f.formats, "format", []string{"all"}, "perfdash, csv, junit, benchfmt, hdr or all; repeat or separate with commas")
	c.Flags().StringVarP(&f.out, "output", "o", "", "directory to write into (default RESULTS_DIR/exports)")
	c.Flags().StringVar(&f.perfdashJob, "perfdash-job", "", "perfdash job name (default labrun-<scenario>)")
	c.Flags().Int64Var(&f.perfdashBuild, "perfdash-build", 0, "perfdash build number (default the run's start time, Unix seconds)")
	return c
}

func runExport(s Streams, dir string, f exportFlags) error {
	formats, err := export.ParseFormats(f.formats)
	if err != nil {
		return UsageError{fmt.Errorf("--format: %w", err)}
	}
	if f.perfdashBuild < 0 {
		return UsageError{fmt.Errorf("--perfdash-build %d: want a positive number", f.perfdashBuild)}
	}
	run, err := results.Open(dir)
	if err != nil {
		return UsageError{err}
	}
	src, err := export.Load(run)
	if err != nil {
		return err
	}
	src.Perfdash = export.PerfdashBuild{Job: f.perfdashJob, Build: f.perfdashBuild}
	out := f.out
	if out == "" {
		out = run.ExportsDir()
	}
	files, err := export.Write(out, src, formats...)
	for _, file := range files {
		fmt.Fprintln(s.Out, file)
	}
	return err
}
