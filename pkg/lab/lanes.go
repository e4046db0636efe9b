package lab

import (
	"fmt"
	"strings"

	"labrun.dev/labrun/pkg/scenario"
)

// Cells side by side (labrun run --cells-at-once N, a scenario's
// cellsAtOnce): a shape's cluster gets N times the shape's workers, kept
// for the cells (cluster.Spec.CellWorkers: DNS and the lab's servers run on
// the control plane), and cut into N lanes of the shape's workers. Each lane
// runs cells one after another, the lanes side by side, and a cell sees its
// lane's nodes only: its probe pods, its race emulator, its counters and its
// captures. Conntrack, its counters and the emulator's queue are per node
// network namespace, so a cell's numbers do not depend on what the other
// lanes run (TestE2ECellsSideBySide measures it).

// cellsAtOnce is how many cells of a shape a run asks to run side by side:
// the flag, else the scenario's, else one.
func cellsAtOnce(flag int, sc *scenario.Scenario) int {
	switch {
	case flag > 0:
		return flag
	case sc.CellsAtOnce > 0:
		return sc.CellsAtOnce
	}
	return 1
}

// lanesFor is how many cells of a shape with cells cells run side by side
// when want are asked for (scenario.Lanes, with the workers the cluster
// gets), and why only one when that is not for the cells or the workers.
func lanesFor(want int, shape scenario.Cluster, cells int) (int, string) {
	shape.Nodes.Workers = specFor(shape).Workers
	return scenario.Lanes(want, shape, cells)
}

// shapeLanes is lanesFor of each shape.
func shapeLanes(want int, shapes []scenario.PlanShape) []int {
	out := make([]int, len(shapes))
	for i, ps := range shapes {
		out[i], _ = lanesFor(want, ps.Shape.Cluster, len(ps.Cells))
	}
	return out
}

// lanes cuts a cluster run into n lanes of its workers, in order, each
// seeing only its own workers as the cluster's nodes. One lane is cr.
func (cr *clusterRun) lanes(n int) []*clusterRun {
	if n <= 1 {
		return []*clusterRun{cr}
	}
	per := len(cr.workers) / n
	out := make([]*clusterRun, n)
	for i := range out {
		nodes := cr.workers[i*per : (i+1)*per]
		view := *cr.c
		view.Nodes = nodes
		l := *cr
		l.c, l.workers = &view, nodes
		l.lane = fmt.Sprintf("lane %d of %d (%s)", i+1, n, strings.Join(nodeNames(nodes), ", "))
		out[i] = &l
	}
	return out
}
