// Package export writes a run's results in formats other tools read:
// perfdash's PerfData JSON, CSV, JUnit XML, Go's benchmark format and
// HdrHistogram logs (docs/results-format.md, "Exports"). It reads only what
// pkg/analyze and pkg/results give, so any run on disk can be exported again.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Format is one export format.
type Format string

const (
	PerfDash Format = "perfdash" // perf-dash / clusterloader2 PerfData JSON, laid out for perfdash's local mode
	CSV      Format = "csv"      // one row per cell
	JUnit    Format = "junit"    // claims, expectations and cells as test cases
	Benchfmt Format = "benchfmt" // Go benchmark format (golang.org/x/perf/benchfmt, benchstat)
	HDR      Format = "hdr"      // an HdrHistogram log per cell, every latency
)

// Formats lists every format, in the order `all` writes them.
var Formats = []Format{PerfDash, CSV, JUnit, Benchfmt, HDR}

// Cheap are the formats made from the analysis alone, without reading the
// samples again: cheap enough to write on every report.
var Cheap = []Format{CSV, JUnit, Benchfmt}

// ParseFormats turns names (each a format, "all", or a comma-separated list
// of them) into formats, without duplicates, in the order of Formats.
func ParseFormats(names []string) ([]Format, error) {
	want := map[Format]bool{}
	for _, n := range names {
		for _, f := range strings.Split(n, ",") {
			f = strings.TrimSpace(f)
			switch {
			case f == "all":
				for _, g := range Formats {
					want[g] = true
				}
			case slices.Contains(Formats, Format(f)):
				want[Format(f)] = true
			default:
				return nil, fmt.Errorf("unknown export format %q: want one of %s or all", f, formatList())
			}
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no export format given: want one of %s or all", formatList())
	}
	var out []Format
	for _, f := range Formats {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

func formatList() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// Source is what the exports are made from.
type Source struct {
	Run      results.RunDir
	Analysis *analyze.Analysis
	// Cells are the recorded scenario's cells by id: the cluster axes
	// (pod network, kube-proxy mode, DNS server) that the analysis does not
	// carry.
	Cells map[string]scenario.Cell
	// Expectations are the scenario's expect: block judged on the run.
	Expectations []expect.Result
	// Perfdash places the PerfData file; zero values take the defaults
	// (job labrun-<scenario>, build = the run's start in Unix seconds).
	Perfdash PerfdashBuild
}

// New makes a Source from an analysis already made (report.Build has one),
// reading only the recorded scenario.
func New(run results.RunDir, a *analyze.Analysis, expectations []expect.Result) (*Source, error) {
	s, err := run.ReadScenario()
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", run.Dir, err)
	}
	cells := map[string]scenario.Cell{}
	for _, c := range s.Expand() {
		cells[c.ID] = c
	}
	return &Source{Run: run, Analysis: a, Cells: cells, Expectations: expectations}, nil
}

// Load analyses the run on disk and takes the expectations from its
// summary.json, when the run has one (the last `labrun report` judged them).
func Load(run results.RunDir) (*Source, error) {
	a, err := analyze.Load(run)
	if err != nil {
		return nil, err
	}
	exp, err := ReadExpectations(run)
	if err != nil {
		return nil, err
	}
	return New(run, a, exp)
}

// ReadExpectations reads the expectations field of a run's summary.json;
// none when the file is absent. Other fields are not read, so a summary
// with fields this labrun does not know still gives its expectations.
func ReadExpectations(run results.RunDir) ([]expect.Result, error) {
	data, err := os.ReadFile(run.SummaryPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read expectations: %w", err)
	}
	var s struct {
		Schema       string          `json:"schema"`
		Expectations []expect.Result `json:"expectations"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read expectations from %s: %w", run.SummaryPath(), err)
	}
	if !strings.HasPrefix(s.Schema, "labrun.dev/summary/") {
		return nil, fmt.Errorf("read expectations from %s: schema %q is not a labrun summary (labrun.dev/summary/v1)", run.SummaryPath(), s.Schema)
	}
	return s.Expectations, nil
}

// Write writes each format's files under dir (created if needed) and returns
// their paths. Every file is written atomically.
func Write(dir string, src *Source, formats ...Format) ([]string, error) {
	var written []string
	for _, f := range formats {
		var files []string
		var err error
		switch f {
		case PerfDash:
			files, err = writePerfdash(dir, src)
		case CSV:
			files, err = writeCSV(dir, src)
		case JUnit:
			files, err = writeJUnit(dir, src)
		case Benchfmt:
			files, err = writeBenchfmt(dir, src)
		case HDR:
			files, err = writeHDR(dir, src)
		default:
			err = fmt.Errorf("unknown format %q: want one of %s", f, formatList())
		}
		written = append(written, files...)
		if err != nil {
			return written, fmt.Errorf("export %s as %s: %w", src.Analysis.Run, f, err)
		}
	}
	return written, nil
}

// clusterOf returns the scenario cell's cluster axes; zero when unknown.
func (s *Source) clusterOf(id string) scenario.Cluster {
	return s.Cells[id].Shape.Cluster
}

// drops returns the emulator's drops (absent without the emulator or
// counters) and the kernel's insert_failed and clashres.
func drops(c *analyze.Cell) (emulator, insertFailed, clashres *uint64) {
	if c.Counters == nil {
		return nil, nil, nil
	}
	f, r := c.Counters.Conntrack[analyze.InsertFailed], c.Counters.Conntrack[analyze.ClashResolved]
	insertFailed, clashres = &f, &r
	if c.Counters.Emulator != nil {
		d := c.Counters.Emulator[analyze.EmulatorDropped]
		emulator = &d
	}
	return emulator, insertFailed, clashres
}

// checkFileName refuses names that would leave the export directory.
func checkFileName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%s %q cannot be a file name", what, name)
	}
	return nil
}

// readFileIfExists returns nil, nil for a file that does not exist.
func readFileIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}
