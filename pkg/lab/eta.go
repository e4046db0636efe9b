package lab

import (
	"slices"
	"sync"
	"time"

	"labrun.dev/labrun/pkg/scenario"
)

// ETA estimates how long the rest of a run takes: each remaining cell's probe
// duration plus the overhead per cell measured so far (namespace, agent,
// pods, counters, deletion), or the plan's estimate before any cell ran;
// plus bringing up and deleting the clusters still to come. It is safe for
// the shapes run side by side (Plan) to use at once.
type ETA struct {
	mu       sync.Mutex
	overhead time.Duration // summed over measured cells
	measured int
	lanes    int // cells of a cluster at once (SideBySide)

	// With shapes run side by side (Plan): how many at once, each shape's
	// cells, and for those started the cells they have still to run.
	slots  int
	shapes [][]scenario.Cell
	state  []shapeState
	left   [][]scenario.Cell
}

type shapeState int

const (
	queued   shapeState = iota
	starting            // its cluster is coming up
	running
	finished
)

// Observe records a finished cell: how long it took and its probes' duration.
func (e *ETA) Observe(took time.Duration, cell scenario.Cell) {
	e.mu.Lock()
	defer e.mu.Unlock()
	extra := took - time.Duration(cell.Load.Duration)
	if extra < 0 {
		extra = 0
	}
	e.overhead += extra
	e.measured++
}

// Overhead is the mean measured overhead per cell, or the plan's estimate.
func (e *ETA) Overhead() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.meanOverhead()
}

func (e *ETA) meanOverhead() time.Duration {
	if e.measured == 0 {
		return scenario.EstimateCellOverhead
	}
	return e.overhead / time.Duration(e.measured)
}

// SideBySide says that the cells of a cluster run n at once (lanes.go).
func (e *ETA) SideBySide(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lanes = n
}

// cellsTime is how long cells take on a cluster that is up: one after
// another, or about 1/n of that n at once.
func (e *ETA) cellsTime(cells []scenario.Cell, overhead time.Duration) time.Duration {
	var d time.Duration
	for _, c := range cells {
		d += time.Duration(c.Load.Duration) + overhead
	}
	return d / time.Duration(max(e.lanes, 1))
}

// shapeSwitch is what a family's cluster takes between two shapes: the
// first's mitigations undone, the state checked, the next one's set up (1 to
// 11 s each in the nightly of 2026-12-06, 5.5 s on average).
const shapeSwitch = 6 * time.Second

// Remaining is the estimate for cells still to run on the current cluster
// and clusters still to come (each with its cells), one after another, with
// switches from one shape of a family to the next between them. The current
// cluster's deletion is counted when current is true.
func (e *ETA) Remaining(cells []scenario.Cell, clustersToCome, switches int, current bool) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.cellsTime(cells, e.meanOverhead())
	d += time.Duration(clustersToCome) * (scenario.EstimateClusterUp + scenario.EstimateClusterDown)
	d += time.Duration(switches) * shapeSwitch
	if current {
		d += scenario.EstimateClusterDown
	}
	return d.Round(time.Second)
}

// Plan makes RunRemaining estimate shapes run at most slots at once, each
// shape (its cells) started in this order on the first slot to come free,
// as Run starts them.
func (e *ETA) Plan(slots int, shapes [][]scenario.Cell) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.slots = max(slots, 1)
	e.shapes = shapes
	e.state = make([]shapeState, len(shapes))
	e.left = make([][]scenario.Cell, len(shapes))
}

// Start says that shape i (of Plan) started: its cluster is coming up.
func (e *ETA) Start(i int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state[i], e.left[i] = starting, e.shapes[i]
}

// Left says that shape i (of Plan) runs its cells and has these still to
// run (the one running included).
func (e *ETA) Left(i int, cells []scenario.Cell) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state[i], e.left[i] = running, slices.Clone(cells)
}

// Done says that shape i (of Plan) ended: its cluster is deleted.
func (e *ETA) Done(i int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state[i], e.left[i] = finished, nil
}

// RunRemaining is the estimate for the rest of the run with the shapes of
// Plan side by side: every started shape's cells still to run and its
// cluster's deletion (and bring-up, if it is coming up), then each shape still queued (bring-up, cells,
// deletion) on the slot that comes free first; the longest slot is the
// estimate. With one slot it is Remaining of all those cells and clusters.
func (e *ETA) RunRemaining() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	overhead := e.meanOverhead()
	var slots []time.Duration
	for i, st := range e.state {
		switch st {
		case starting:
			slots = append(slots, scenario.EstimateClusterUp+e.cellsTime(e.left[i], overhead)+scenario.EstimateClusterDown)
		case running:
			slots = append(slots, e.cellsTime(e.left[i], overhead)+scenario.EstimateClusterDown)
		}
	}
	for len(slots) < e.slots {
		slots = append(slots, 0)
	}
	for i, st := range e.state {
		if st != queued {
			continue
		}
		free := slices.Index(slots, slices.Min(slots))
		slots[free] += scenario.EstimateClusterUp + e.cellsTime(e.shapes[i], overhead) + scenario.EstimateClusterDown
	}
	if len(slots) == 0 {
		return 0
	}
	return slices.Max(slots).Round(time.Second)
}
