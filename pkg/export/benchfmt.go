package export

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/perf/benchfmt"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

// BenchfmtVersion is the value of the labrun-format configuration line.
const BenchfmtVersion = "labrun.dev/benchfmt/v1"

// BenchfmtFile is the benchmark-format export's file name.
const BenchfmtFile = "bench.txt"

// Units of the benchmark lines. Latencies are per lookup; "better" says which
// way benchstat should read a change.
var benchUnits = []struct{ unit, better string }{
	{"ms/p50-lookup", "lower"},
	{"ms/p90-lookup", "lower"},
	{"ms/p99-lookup", "lower"},
	{"ms/max-lookup", "lower"},
	{"share-at-5s", "lower"},
	{"timeouts", "lower"},
	{"emulator-drops", "lower"},
	{"insert-failed", "lower"},
}

func writeBenchfmt(dir string, src *Source) ([]string, error) {
	data, err := benchText(src)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, BenchfmtFile)
	return []string{path}, results.WriteFile(path, data)
}

// benchText writes one benchmark line per measured cell, through benchfmt's
// own Writer. Incomplete and not-run cells have none: partial numbers would
// read as a result.
func benchText(src *Source) ([]byte, error) {
	a := src.Analysis
	var b bytes.Buffer
	w := benchfmt.NewWriter(&b)
	for _, u := range benchUnits {
		if err := w.Write(&benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u.unit, Key: "better"}, OrigUnit: u.unit, Value: u.better}); err != nil {
			return nil, err
		}
	}
	config := []benchfmt.Config{
		{Key: "labrun-format", Value: []byte(BenchfmtVersion), File: true},
		{Key: "run", Value: []byte(oneLine(a.Run)), File: true},
		{Key: "scenario", Value: []byte(oneLine(a.Scenario)), File: true},
		{Key: "kernel", Value: []byte(oneLine(a.Env.Kernel)), File: true},
		{Key: "kubernetes", Value: []byte(oneLine(a.Env.Kubernetes)), File: true},
	}
	for _, c := range a.Cells {
		if !c.Measured() {
			continue
		}
		r := &benchfmt.Result{Config: config, Name: benchfmt.Name(benchName(c)), Iters: int(c.Stats.Count)}
		s := c.Stats
		emu, insertFailed, _ := drops(c)
		vals := []float64{s.P50MS, s.P90MS, s.P99MS, s.MaxMS, s.ClusteredShare, float64(s.Timeouts)}
		for i, v := range vals {
			r.Values = append(r.Values, benchfmt.Value{Value: v, Unit: benchUnits[i].unit})
		}
		if emu != nil {
			r.Values = append(r.Values, benchfmt.Value{Value: float64(*emu), Unit: "emulator-drops"})
		}
		if insertFailed != nil {
			r.Values = append(r.Values, benchfmt.Value{Value: float64(*insertFailed), Unit: "insert-failed"})
		}
		if err := w.Write(r); err != nil {
			return nil, fmt.Errorf("write benchmark line: %w", err)
		}
	}
	return b.Bytes(), nil
}

// benchName is DNS/cell=…/resolver=…/mitigation=…/load=…. The load id comes
// last because it always ends in a duration unit: a name ending in "-<digits>"
// (mitigation ndots-1) would be read as a GOMAXPROCS suffix.
func benchName(c *analyze.Cell) string {
	return fmt.Sprintf("DNS/cell=%s/resolver=%s/mitigation=%s/load=%s", c.ID, c.Resolver, c.Mitigation, c.Load)
}

// oneLine keeps a configuration value on its line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
