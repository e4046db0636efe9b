package scenario

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/mitigation"
)

// Cell is one combination of the matrix: a cluster shape, a back end, a
// mitigation set, a list of names, a load, a chaos setting and a repeat.
type Cell struct {
	// ID is stable for a given scenario and readable:
	// SHAPE_RESOLVER_MITIGATIONS[_NAMES][_LOAD][_CHAOS][_rN], the bracketed
	// parts present only when their axis has more than one value.
	ID          string
	Shape       Shape
	Resolver    string         // as the scenario names it
	Backend     string         // what the probe runs (grpc-ares + grpc-native runs grpc-native)
	Mitigations mitigation.Set // the whole set, pod- and cluster-level
	Names       NameSet
	Load        Load
	LoadID      string
	Chaos       Chaos
	Repeat      int // 1-based
	// Ignored lists mitigations of the set that Resolver is known to ignore:
	// the cell runs, to show that they do nothing.
	Ignored []string
	// NotRun says why the cell is not run; empty when it runs.
	NotRun string
}

// Runs reports whether the cell is to be run.
func (c Cell) Runs() bool { return c.NotRun == "" }

// MitigationID is the canonical id of the cell's mitigation set.
func (c Cell) MitigationID() string { return c.Mitigations.ID() }

// UnderEmulator reports whether the race emulator runs during the cell.
func (c Cell) UnderEmulator() bool { return c.Chaos.RaceEmulator != nil }

// Shape is a cluster as the cells need it: a cluster entry of the scenario
// plus the cluster-level mitigations of the cells' sets. Cells of one shape
// share one cluster.
type Shape struct {
	ID                 string
	Cluster            Cluster
	ClusterMitigations []string // sorted ids; empty for a plain cluster
}

// NameSet is one list of names with a short id.
type NameSet struct {
	ID    string
	Names []Name
}

// ID of a chaos setting: "bare" (no fault) or "emu-PROFILE" with the window
// when it differs from the default.
func (c Chaos) ID() string {
	e := c.RaceEmulator
	if e == nil {
		return "bare"
	}
	id := "emu-" + e.Profile
	if e.Window != DefaultWindow {
		id += "-w" + e.Window.String()
	}
	if e.Probability != nil {
		id += fmt.Sprintf("-p%g", *e.Probability)
	}
	return id
}

// ID of a load: pods per node, concurrency, rate and duration, e.g. p2c4r50d60s.
func (l Load) ID() string {
	return fmt.Sprintf("p%dc%dr%gd%s", l.PodsPerNode, l.Concurrency, float64(l.Rate), l.Duration)
}

// Unsupported says why the lab cannot run a cell, or "" if it can: a
// mitigation whose cluster or node side it does not set up. Every axis value
// of a cluster shape is set up by the lab; what the host decides (IPVS in the
// kernel, published images in the store) is the runner's to check: it
// records such a cell as not run, with the host's reason.
func Unsupported(c Cell) string {
	for _, m := range c.Mitigations {
		if !m.Implemented {
			return fmt.Sprintf("mitigation %s (%s) is not set up by the lab yet", m.ID, m.Where)
		}
	}
	return ""
}

// Expand returns every cell of the scenario, in run order: by shape, then
// back end, mitigation set, names, load, chaos and repeat. Cells that cannot
// apply or that the lab cannot run yet are included with NotRun set.
func (s *Scenario) Expand() []Cell {
	w := s.Workload
	sets := make([]mitigation.Set, len(w.Mitigations))
	for i, m := range w.Mitigations {
		sets[i] = mitigation.MustParseSet(m) // validated by Load
	}
	names := nameSets(w.Names)
	var cells []Cell
	for _, cl := range s.Clusters {
		for _, variant := range clusterVariants(sets) {
			shape := Shape{ID: cl.Name, Cluster: cl, ClusterMitigations: variant}
			if len(variant) > 0 {
				shape.ID += "+" + strings.Join(variant, "+")
			}
			for _, r := range w.Resolvers {
				for _, set := range sets {
					if strings.Join(clusterIDs(set), "+") != strings.Join(variant, "+") {
						continue
					}
					for _, ns := range names {
						for _, l := range w.Load {
							for _, ch := range s.Chaos {
								for rep := 1; rep <= s.Repeats; rep++ {
									cells = append(cells, s.cell(shape, r, set, ns, l, ch, rep, len(names), len(w.Load)))
								}
							}
						}
					}
				}
			}
		}
	}
	return cells
}

func (s *Scenario) cell(shape Shape, r string, set mitigation.Set, ns NameSet, l Load, ch Chaos, rep, nNames, nLoads int) Cell {
	c := Cell{
		Shape: shape, Resolver: r, Backend: set.EffectiveResolver(r), Mitigations: set,
		Names: ns, Load: l, LoadID: l.ID(), Chaos: ch, Repeat: rep,
	}
	parts := []string{shape.ID, r, set.ID()}
	if nNames > 1 {
		parts = append(parts, ns.ID)
	}
	if nLoads > 1 {
		parts = append(parts, c.LoadID)
	}
	if len(s.Chaos) > 1 {
		parts = append(parts, ch.ID())
	}
	if s.Repeats > 1 {
		parts = append(parts, fmt.Sprintf("r%d", rep))
	}
	c.ID = strings.Join(parts, "_")
	a := set.For(r)
	c.Ignored = a.Ignored
	switch {
	case mitigation.Unavailable(r) != "":
		c.NotRun = "back end " + r + " not available: " + mitigation.Unavailable(r)
	case !a.Applies:
		c.NotRun = "not applicable: " + a.Reason
	case set.Has("autopath") && shape.Cluster.DNS.Server == "kube-dns":
		c.NotRun = "not applicable: autopath is a CoreDNS plugin; kube-dns has none"
	case set.Has("random-fully") && shape.Cluster.PodNetwork != DefaultPodNetwork:
		c.NotRun = "not set up: random-fully is put on the masquerade rule of the lab's own pod network (podNetwork default); the lab does not rewrite " + shape.Cluster.PodNetwork + "'s"
	case set.Has("random-fully") && shape.Cluster.NodeImage == "published":
		c.NotRun = "not set up: random-fully is put on the masquerade rule of the lab's own pod network; the published node image runs kindnet, whose rules the lab does not rewrite"
	default:
		c.NotRun = Unsupported(c)
	}
	return c
}

// clusterVariants lists the distinct cluster-level parts of the sets: the
// plain cluster ([]) first when any set needs it, since every baseline runs
// there, then the others in the order the sets first use them.
func clusterVariants(sets []mitigation.Set) [][]string {
	var plain bool
	var out [][]string
	seen := map[string]bool{}
	for _, set := range sets {
		ids := clusterIDs(set)
		if len(ids) == 0 {
			plain = true
			continue
		}
		if key := strings.Join(ids, "+"); !seen[key] {
			seen[key] = true
			out = append(out, ids)
		}
	}
	if plain {
		out = append([][]string{nil}, out...)
	}
	return out
}

func clusterIDs(set mitigation.Set) []string {
	var ids []string
	for _, m := range set.ClusterLevel() {
		ids = append(ids, m.ID)
	}
	return ids
}

// nameSets gives each list of names an id made of its kinds (short+external);
// lists with the same kinds are numbered.
func nameSets(lists [][]Name) []NameSet {
	out := make([]NameSet, len(lists))
	count := map[string]int{}
	for i, l := range lists {
		var kinds []string
		for _, n := range l {
			if !slices.Contains(kinds, n.Kind) {
				kinds = append(kinds, n.Kind)
			}
		}
		id := strings.Join(kinds, "+")
		count[id]++
		if count[id] > 1 {
			id = fmt.Sprintf("%s%d", id, count[id])
		}
		out[i] = NameSet{ID: id, Names: l}
	}
	return out
}

// Estimates behind Plan's wall time, measured on the lab machine
// (FACTS.md: kind create 20 s, delete 4 s) with margins for addons and pods.
const (
	EstimateClusterUp    = 60 * time.Second // create, addons, CoreDNS ready
	EstimateClusterDown  = 10 * time.Second
	EstimateCellOverhead = 15 * time.Second // namespace, pods up, counters, logs, delete
)

// PlanShape is one cluster and the cells that run on it.
type PlanShape struct {
	Shape Shape
	Cells []Cell
}

// Plan groups cells by shape, in order.
func Plan(cells []Cell) []PlanShape {
	var out []PlanShape
	index := map[string]int{}
	for _, c := range cells {
		i, ok := index[c.Shape.ID]
		if !ok {
			i = len(out)
			index[c.Shape.ID] = i
			out = append(out, PlanShape{Shape: c.Shape})
		}
		out[i].Cells = append(out[i].Cells, c)
	}
	return out
}

// Families groups shapes (their indices) that one cluster serves in turn,
// in plan order, each family where its first shape is: shapes of the same
// cluster entry on the lab's own pod network, with as many cells side by
// side (lanes[i], the shape's Lanes; nil: one each), whose cluster-level
// mitigations the lab undoes exactly (mitigation.Mitigation.Undone), the
// plain shape among them. Another pod network's agents write rules per pod
// that a reset cannot be checked against, and the published node image's
// (kindnet) was never checked. With reuse false each shape is a family of
// its own.
func Families(shapes []PlanShape, lanes []int, reuse bool) [][]int {
	type key struct {
		cluster Cluster
		lanes   int
	}
	var out [][]int
	at := map[key]int{} // a family by its key
	for i, ps := range shapes {
		k := key{ps.Shape.Cluster, 1}
		if lanes != nil {
			k.lanes = lanes[i]
		}
		c := ps.Shape.Cluster
		labnet := (c.PodNetwork == "" || c.PodNetwork == DefaultPodNetwork) && c.NodeImage != "published"
		if reuse && labnet && undone(ps.Shape.ClusterMitigations) {
			if f, ok := at[k]; ok {
				out[f] = append(out[f], i)
				continue
			}
			at[k] = len(out)
		}
		out = append(out, []int{i})
	}
	return out
}

// PlanLanes is each shape's Lanes for atOnce cells at once, over its cells
// that run.
func PlanLanes(shapes []PlanShape, atOnce int) []int {
	out := make([]int, len(shapes))
	for i, ps := range shapes {
		runs := 0
		for _, c := range ps.Cells {
			if c.Runs() {
				runs++
			}
		}
		out[i], _ = Lanes(atOnce, ps.Shape.Cluster, runs)
	}
	return out
}

func undone(ids []string) bool {
	for _, id := range ids {
		if m, err := mitigation.Lookup(id); err != nil || !m.Undone {
			return false
		}
	}
	return true
}

// EstimateWallTime is how long running the cells should take, shapes one
// after another and up to atOnce cells of a shape at a time (Lanes; 0 or 1:
// one after another): a cluster per family of shapes (Families) that has a
// cell to run, and each cell's duration plus overhead, divided among the
// shape's lanes.
func EstimateWallTime(cells []Cell, atOnce int) time.Duration {
	var total time.Duration
	var running []PlanShape
	var lanes []int
	for _, ps := range Plan(cells) {
		var shape time.Duration
		runs := 0
		for _, c := range ps.Cells {
			if c.Runs() {
				runs++
				shape += EstimateCell(c)
			}
		}
		if runs > 0 {
			n, _ := Lanes(atOnce, ps.Shape.Cluster, runs)
			total += shape / time.Duration(n)
			running, lanes = append(running, ps), append(lanes, n)
		}
	}
	return total + time.Duration(len(Families(running, lanes, true)))*EstimateCluster
}

// MaxClusterWorkers is the most workers a lab cluster has (cluster.MaxWorkers):
// what bounds the lanes of cells side by side.
const MaxClusterWorkers = 8

// Lanes is how many cells of a cluster shape with cells cells run side by
// side when want are asked for (cellsAtOnce, labrun run --cells-at-once):
// each lane has the shape's workers, so no more than MaxClusterWorkers
// allows, nor than the cells; one for a shape without workers (its cells
// run on the control plane), and one on a pod network other than the lab's
// own, with why.
func Lanes(want int, c Cluster, cells int) (int, string) {
	workers := c.Nodes.Workers
	switch {
	case want <= 1 || workers <= 0:
		return 1, ""
	case c.NodeImage == "published":
		return 1, "the published node image's pod network (kindnet) was never checked with cells side by side"
	case c.PodNetwork != "" && c.PodNetwork != DefaultPodNetwork:
		// Measured (nightly, 2026-12-07): kube-router's cells side by side
		// lost bursts of DNS packets, up to 2 s into a cell, with no drop
		// of the emulator's. labnet watches nodes only.
		return 1, "pod network " + c.PodNetwork + ": its agents act on every pod of the cluster (network policy), so one lane's pods would disturb the other lane's nodes"
	}
	return max(1, min(want, cells, MaxClusterWorkers/workers)), ""
}

// EstimateCluster is what a shape's cluster costs whatever its cells: bring-up
// and deletion.
const EstimateCluster = EstimateClusterUp + EstimateClusterDown

// EstimateCell is how long a cell that runs should take on its cluster: its
// duration plus the per-cell overhead.
func EstimateCell(c Cell) time.Duration {
	return time.Duration(c.Load.Duration) + EstimateCellOverhead
}
