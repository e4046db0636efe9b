// Command celloverhead reads finished runs and prints, for every complete
// cell, how long the cell took beyond its probes' own span (the first
// lookup's start to the last lookup's end, from the raw samples): the cost
// of a cell's set-up, its pods' start and end, its counters, capture and
// teardown. Then the median, the quartiles and the worst over all cells.
//
//	go run ./bench/celloverhead results/baseline-20261207-...  [more runs]
//
// A cell's span is measured by the probes' own clocks and its wall time by
// the runner's (status started, finished); both are the host's clock here.
package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/montanaflynn/stats"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/sample"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: celloverhead RUN_DIR...")
		os.Exit(2)
	}
	var all []float64
	for _, dir := range os.Args[1:] {
		overheads, err := run(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "celloverhead:", err)
			os.Exit(1)
		}
		all = append(all, overheads...)
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "celloverhead: no complete cell with samples")
		os.Exit(1)
	}
	median, _ := stats.Median(all)
	q, _ := stats.Quartile(all)
	fmt.Printf("%d cells: overhead median %.2fs, quartiles %.2fs–%.2fs, worst %.2fs\n", len(all), median, q.Q1, q.Q3, slices.Max(all))
}

// run prints each complete cell of a run and returns their overheads (s).
func run(dir string) ([]float64, error) {
	r, err := results.Open(dir)
	if err != nil {
		return nil, err
	}
	cells, err := r.StatusCells()
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, cell := range cells {
		st, ok, err := r.ReadStatus(cell)
		if err != nil || !ok || st.State != results.Complete {
			continue
		}
		first, last := int64(math.MaxInt64), int64(0)
		if _, err := r.ReadSamples(cell, func(s *sample.Sample) {
			first = min(first, s.StartNS)
			last = max(last, s.StartNS+s.DurationUS*1000)
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", cell, err)
		}
		if last == 0 {
			continue
		}
		wall := st.Finished.Sub(st.Started)
		span := time.Duration(last - first)
		over := (wall - span).Seconds()
		fmt.Printf("%s %s: wall %.2fs, probes' span %.2fs, overhead %.2fs\n", r.Name(), cell, wall.Seconds(), span.Seconds(), over)
		out = append(out, over)
	}
	return out, nil
}
