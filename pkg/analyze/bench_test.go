package analyze

import (
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/scenario"
)

// BenchmarkAccumulator measures the statistics alone: one Add per sample.
func BenchmarkAccumulator(b *testing.B) {
	a := NewAccumulator("bench")
	d := int64(1500)
	for i := 0; b.Loop(); i++ {
		a.Add(d+int64(i&1023), sample.OK)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkAnalyzeRun measures what `labrun report` does per sample: read
// JSON Lines from disk, decode, accumulate, compare, check claims.
func BenchmarkAnalyzeRun(b *testing.B) {
	const perCell = 250_000
	run, err := resultstest.WriteRun(b.TempDir(), "bench", baselineYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
		return resultstest.Cell{Lookups: perCell, Delayed: 0.01, EmulatorDropped: 10}, true
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(run); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(4*perCell*b.N)/b.Elapsed().Seconds(), "samples/s")
}
