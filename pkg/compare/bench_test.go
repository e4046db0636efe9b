package compare

import (
	"fmt"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

// BenchmarkCompare compares two synthetic runs of the baseline scenario's
// four cells: baseline-sized (2,500 lookups a cell, as a real baseline run
// makes at most) and a long run's size (250,000 a cell). The target is two
// real baseline runs in well under a second.
func BenchmarkCompare(b *testing.B) {
	for _, perCell := range []int{2500, 250_000} {
		b.Run(fmt.Sprintf("lookups=%d", perCell), func(b *testing.B) {
			root := b.TempDir()
			spec := func(seed uint64) resultstest.Spec {
				return func(c scenario.Cell) (resultstest.Cell, bool) {
					cs := resultstest.Cell{Lookups: perCell, Seed: seed}
					if c.Mitigations.IsNone() {
						cs.Delayed = 0.02
					}
					return cs, true
				}
			}
			ra := writeRun(b, root, "a", baselineYAML, spec(1))
			rb := writeRun(b, root, "b", baselineYAML, spec(2))
			b.ResetTimer()
			for b.Loop() {
				if _, err := Runs(ra, rb, DefaultOptions()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(2*4*perCell*b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}
