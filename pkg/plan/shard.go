// Package plan splits a scenario's cells into shards, one per machine of a
// parallel run (labrun plan --shards N, labrun run --shard i/N), and gives
// the plan as JSON for machines (labrun plan --json).
package plan

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"labrun.dev/labrun/pkg/scenario"
)

// MaxShards is the most shards a plan is split into.
const MaxShards = 256

// Shard is one part of a split plan: the cells one machine runs.
type Shard struct {
	Index int // 1-based
	Count int
	// Cells are the shard's cells that will run, in the plan's run order.
	Cells []scenario.Cell
	// Shapes are the ids of the cluster shapes of Cells, in run order.
	Shapes []string
	// Estimate is scenario.EstimateWallTime of Cells, one cell at a time
	// (what balances the shards): a cluster per shape.
	Estimate time.Duration
}

// String is the shard as --shard takes it: i/N.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// IDs are the ids of the shard's cells.
func (s Shard) IDs() []string {
	ids := make([]string, len(s.Cells))
	for i, c := range s.Cells {
		ids[i] = c.ID
	}
	return ids
}

var shardSpec = regexp.MustCompile(`^([0-9]+)/([0-9]+)$`)

// ParseShard reads a shard as --shard takes it: i/N.
func ParseShard(s string) (index, count int, err error) {
	m := shardSpec.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("shard %q: want i/N with 1 ≤ i ≤ N ≤ %d, e.g. 2/4", s, MaxShards)
	}
	index, err1 := strconv.Atoi(m[1])
	count, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("shard %q: want i/N with 1 ≤ i ≤ N ≤ %d, e.g. 2/4", s, MaxShards)
	}
	return index, count, CheckShard(index, count)
}

// CheckShard says whether shard index of count exists: 1 ≤ i ≤ N ≤ MaxShards.
func CheckShard(index, count int) error {
	if count < 1 || count > MaxShards || index < 1 || index > count {
		return fmt.Errorf("shard %d/%d: want i/N with 1 ≤ i ≤ N ≤ %d, e.g. 2/4", index, count, MaxShards)
	}
	return nil
}

// Split divides the cells that will run (scenario.Cell.Runs) into n shards,
// all of them returned, some possibly empty; cells that do not run are in
// none. The same cells give the same shards.
//
// The cells of a shape share one cluster, and so do the shapes of a family
// (scenario.Families: a plain shape and those that differ from it only by
// mitigations labrun run undoes), so a shard pays a cluster
// (scenario.EstimateCluster) for every family it holds, and splitting a
// family costs one cluster more. Families are kept whole unless splitting
// shortens the longest shard by more than the extra clusters add to the mean
// shard. The method (a "shape" below is a family):
//
//  1. Each shape is cut into k_s pieces (k_s = 1 at first), consecutive cells
//     (its shapes in plan order) of about equal estimated time, each piece
//     paying the cluster.
//  2. Pieces are assigned longest-processing-time first: longest piece first
//     (ties in plan order) to the least loaded shard (ties: the lowest
//     index). A shard is never left empty while another holds two pieces.
//  3. The shape of the longest piece gets one piece more and step 2 is
//     redone, as long as the longest shard (the makespan, from
//     scenario.EstimateWallTime of each shard's cells) does not get longer
//     and that shape has more cells than pieces. A split that leaves the
//     makespan as it was is explored further: when several shapes are
//     equally long (nightly's four plain shapes), or one shape's pieces go
//     into empty shards one by one, only a series of splits pays off.
//  4. Of the plans met, the one with the lowest makespan + splits ×
//     EstimateCluster / n wins (the first met among equals: fewest splits).
//     So a split that saves the longest shard less than its cluster adds
//     to the mean shard is not made (nightly on 8 shards: 7 s saved, 4
//     clusters more), and one that halves it is.
func Split(cells []scenario.Cell, n int) ([]Shard, error) {
	if n < 1 || n > MaxShards {
		return nil, fmt.Errorf("%d shards: want 1 ≤ N ≤ %d", n, MaxShards)
	}
	order := map[string]int{}
	var running []scenario.PlanShape // the shapes with cells that run, with those only
	for _, ps := range scenario.Plan(cells) {
		var runs []scenario.Cell
		for _, c := range ps.Cells {
			if c.Runs() {
				order[c.ID] = len(order)
				runs = append(runs, c)
			}
		}
		if len(runs) > 0 {
			running = append(running, scenario.PlanShape{Shape: ps.Shape, Cells: runs})
		}
	}
	// The cells that run, by family of shapes (one cluster each, as labrun
	// run makes them; one cell at a time, as the estimates count), in plan
	// order.
	var groups [][]scenario.Cell
	for _, family := range scenario.Families(running, nil, true) {
		var g []scenario.Cell
		for _, i := range family {
			g = append(g, running[i].Cells...)
		}
		groups = append(groups, g)
	}
	parts := make([]int, len(groups))
	for g := range parts {
		parts[g] = 1
	}
	// score weighs the wall time (the longest shard) against the runner
	// time the splits add (a cluster each), spread over the n machines.
	splits := 0
	score := func(a assignment) time.Duration {
		return a.makespan + time.Duration(splits)*scenario.EstimateCluster/time.Duration(n)
	}
	best := assign(groups, parts, n, order)
	bestScore := score(best)
	for cur := best; cur.longest >= 0 && parts[cur.longest] < len(groups[cur.longest]); {
		parts[cur.longest]++
		splits++
		next := assign(groups, parts, n, order)
		if next.makespan > cur.makespan {
			break
		}
		if s := score(next); s < bestScore {
			best, bestScore = next, s
		}
		cur = next
	}
	return best.shards, nil
}

// assignment is one way of putting pieces of shapes on shards.
type assignment struct {
	shards   []Shard
	makespan time.Duration // the longest shard's estimate
	longest  int           // the group of the longest piece; -1 without cells
}

type piece struct {
	cells []scenario.Cell
	cost  time.Duration
	group int
}

// assign cuts group g into parts[g] pieces and puts them on n shards,
// longest piece first, each on the least loaded shard.
func assign(groups [][]scenario.Cell, parts []int, n int, order map[string]int) assignment {
	var pieces []piece
	for g, cells := range groups {
		for _, p := range cut(cells, parts[g]) {
			cost := scenario.EstimateCluster
			for _, c := range p {
				cost += scenario.EstimateCell(c)
			}
			pieces = append(pieces, piece{cells: p, cost: cost, group: g})
		}
	}
	// Stable: equal pieces keep the plan's order.
	slices.SortStableFunc(pieces, func(a, b piece) int { return cmp.Compare(b.cost, a.cost) })
	a := assignment{shards: make([]Shard, n), longest: -1}
	if len(pieces) > 0 {
		a.longest = pieces[0].group
	}
	load := make([]time.Duration, n)
	for _, p := range pieces {
		i := 0
		for j := range load {
			if load[j] < load[i] {
				i = j
			}
		}
		load[i] += p.cost
		a.shards[i].Cells = append(a.shards[i].Cells, p.cells...)
	}
	for i := range a.shards {
		s := &a.shards[i]
		s.Index, s.Count = i+1, n
		slices.SortFunc(s.Cells, func(x, y scenario.Cell) int { return order[x.ID] - order[y.ID] })
		for _, c := range s.Cells {
			if !slices.Contains(s.Shapes, c.Shape.ID) {
				s.Shapes = append(s.Shapes, c.Shape.ID)
			}
		}
		s.Estimate = scenario.EstimateWallTime(s.Cells, 1)
		a.makespan = max(a.makespan, s.Estimate)
	}
	return a
}

// cut divides cells into k runs of consecutive cells (1 ≤ k ≤ len(cells)),
// each non-empty, their estimated times as close to equal as the cells
// allow: each cut falls where the running total is nearest to its share.
func cut(cells []scenario.Cell, k int) [][]scenario.Cell {
	var total time.Duration
	for _, c := range cells {
		total += scenario.EstimateCell(c)
	}
	out := make([][]scenario.Cell, 0, k)
	start, end := 0, 0
	var sum time.Duration
	for j := 1; j < k; j++ {
		target := total * time.Duration(j) / time.Duration(k)
		sum += scenario.EstimateCell(cells[end]) // at least one cell per piece
		end++
		// Take the next cell while that brings the total nearer the
		// target, leaving one cell for each piece after this one.
		for end < len(cells)-(k-j) && 2*sum+scenario.EstimateCell(cells[end]) < 2*target {
			sum += scenario.EstimateCell(cells[end])
			end++
		}
		out = append(out, cells[start:end])
		start = end
	}
	return append(out, cells[start:])
}
