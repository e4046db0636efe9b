package lab

import (
	"time"

	"labrun.dev/labrun/pkg/scenario"
)

// ETA estimates how long the rest of a run takes: each remaining cell's probe
// duration plus the overhead per cell measured so far (namespace, agent,
// pods, counters, deletion), or the plan's estimate before any cell ran;
// plus bringing up and deleting the clusters still to come.
type ETA struct {
	overhead time.Duration // summed over measured cells
	measured int
}

// Observe records a finished cell: how long it took and its probes' duration.
func (e *ETA) Observe(took time.Duration, cell scenario.Cell) {
	extra := took - time.Duration(cell.Load.Duration)
	if extra < 0 {
		extra = 0
	}
	e.overhead += extra
	e.measured++
}

// Overhead is the mean measured overhead per cell, or the plan's estimate.
func (e *ETA) Overhead() time.Duration {
	if e.measured == 0 {
		return scenario.EstimateCellOverhead
	}
	return e.overhead / time.Duration(e.measured)
}

// Remaining is the estimate for cells still to run on the current cluster
// and clusters still to come (each with its cells). The current cluster's
// deletion is counted when current is true.
func (e *ETA) Remaining(cells []scenario.Cell, clustersToCome int, current bool) time.Duration {
	var d time.Duration
	for _, c := range cells {
		d += time.Duration(c.Load.Duration) + e.Overhead()
	}
	d += time.Duration(clustersToCome) * (scenario.EstimateClusterUp + scenario.EstimateClusterDown)
	if current {
		d += scenario.EstimateClusterDown
	}
	return d.Round(time.Second)
}
