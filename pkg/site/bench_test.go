package site

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

// benchYAML has 40 cells: 2 back ends × 5 mitigations × 4 loads.
const benchYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: bench}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen, single-request, use-vc, ndots-1]
  load:
    - {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 10s}
    - {podsPerNode: 2, concurrency: 2, rate: 10/s, duration: 10s}
    - {podsPerNode: 2, concurrency: 4, rate: 10/s, duration: 10s}
    - {podsPerNode: 4, concurrency: 8, rate: 10/s, duration: 10s}
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

const (
	benchRuns           = 100
	benchDistinct       = 5 // runs analysed and reported; the others are copies under other names
	benchLookupsPerCell = 1000
)

// writeBenchRuns writes benchRuns runs of 40 cells each, with their
// reports, as labrun run leaves them, under root, and returns root. Drawing
// a report takes a second, so benchDistinct runs (of different data) are
// made and copied under the names of the others, one hour apart.
func writeBenchRuns(tb testing.TB, root string) {
	tb.Helper()
	var made []results.RunDir
	for i := range benchDistinct {
		delayed := 0.01 * float64(i+1)
		spec := func(c scenario.Cell) (resultstest.Cell, bool) {
			cs := resultstest.Cell{Lookups: benchLookupsPerCell, ClashRes: 100}
			if c.Mitigations.IsNone() || c.Backend == "musl" {
				cs.Delayed, cs.EmulatorDropped = delayed, uint64(delayed*benchLookupsPerCell)
			}
			return cs, true
		}
		run, err := resultstest.WriteRun(filepath.Join(root, "made"), fmt.Sprintf("bench-%d", i), benchYAML, spec)
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := report.Build(run); err != nil {
			tb.Fatal(err)
		}
		made = append(made, run)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchRuns {
		name := "bench-" + start.Add(time.Duration(i)*time.Hour).Format("20060102-150405")
		if err := os.CopyFS(filepath.Join(root, "results", name), os.DirFS(made[i%benchDistinct].Dir)); err != nil {
			tb.Fatal(err)
		}
		// Copies take the time they were made: put the report after the
		// run's files again, as labrun run leaves them.
		dir := filepath.Join(root, "results", name)
		for j, f := range []string{"summary.json", "index.html"} {
			at := time.Now().Add(time.Duration(j+1) * time.Second)
			if err := os.Chtimes(filepath.Join(dir, f), at, at); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkSite builds a site over 100 runs of 40 cells, from their
// reports. bench/site.sh runs the labrun binary over the same runs with
// /usr/bin/time for the peak RSS.
func BenchmarkSite(b *testing.B) {
	root := b.TempDir()
	writeBenchRuns(b, root)
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "site")
		res, err := Build(context.Background(), Options{Inputs: []string{filepath.Join(root, "results")}, Out: out})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Index.Runs) != benchRuns || len(Histories(res.Index)) != 40 {
			b.Fatalf("%d runs, %d histories", len(res.Index.Runs), len(Histories(res.Index)))
		}
	}
	b.ReportMetric(float64(benchRuns), "runs/op")
}

// TestWriteBenchRuns writes the benchmark's runs for bench/site.sh, into
// $LABRUN_SITE_BENCH_DIR/results; without it, it is skipped.
func TestWriteBenchRuns(t *testing.T) {
	dir := os.Getenv("LABRUN_SITE_BENCH_DIR")
	if dir == "" {
		t.Skip("LABRUN_SITE_BENCH_DIR not set: bench/site.sh sets it")
	}
	writeBenchRuns(t, dir)
}
