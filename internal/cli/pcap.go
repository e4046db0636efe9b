package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/analyze/capture"
)

type pcapFlags struct {
	json    bool
	lookups bool
	window  string
}

func newPcapCommand(s Streams) *cobra.Command {
	var f pcapFlags
	c := &cobra.Command{
		Use:   "pcap FILE",
		Short: "Analyse a DNS capture: same-port A/AAAA pairs, re-sends at 5 s multiples, unanswered queries, names per lookup",
		Long: `Reads a pcap (tcpdump -w; gzipped is fine) and reports what the field reports
look for: A and AAAA queries leaving from the same source port less than the
pair window apart, queries re-sent with the same ID and after how long (5 s
multiples marked), queries never answered, and the names each lookup tried.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return runPcap(s, f, args[0]) },
	}
	c.Flags().BoolVar(&f.json, "json", false, "print one JSON object instead of text")
	c.Flags().BoolVar(&f.lookups, "lookups", false, "with --json, list every lookup (lookup_list)")
	c.Flags().StringVar(&f.window, "pair-window", "1ms", "A and AAAA less than this apart form a pair")
	return c
}

func runPcap(s Streams, f pcapFlags, path string) error {
	opts := capture.Options{ListLookups: f.lookups}
	var err error
	if opts.PairWindow, err = pcapWindow(f.window); err != nil {
		return UsageError{fmt.Errorf("--pair-window: %w", err)}
	}
	file, err := os.Open(path)
	if err != nil {
		return UsageError{fmt.Errorf("pcap: %w", err)}
	}
	defer file.Close()
	rep, err := capture.Analyze(file, opts)
	if err != nil {
		return UsageError{fmt.Errorf("%s: %w", path, err)}
	}
	if f.json {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return capture.WriteText(s.Out, rep)
}

func pcapWindow(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%v: must be > 0", d)
	}
	return d, nil
}
