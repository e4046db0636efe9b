package plan

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/scenario"
)

// cellsOf makes n cells of a shape (of a cluster entry of its own), each of
// the given duration; a duration of 0 makes cells that do not run.
func cellsOf(shape string, n int, d time.Duration) []scenario.Cell {
	var out []scenario.Cell
	for i := range n {
		c := scenario.Cell{ID: fmt.Sprintf("%s_%d", shape, i+1), Shape: scenario.Shape{ID: shape, Cluster: scenario.Cluster{Name: shape}},
			Load: scenario.Load{Duration: scenario.Duration(d)}}
		if d == 0 {
			c.NotRun = "not applicable: test"
		}
		out = append(out, c)
	}
	return out
}

// familyCellsOf makes n cells of the shape of cluster entry cluster with a
// cluster-level mitigation.
func familyCellsOf(cluster, mitigation string, n int, d time.Duration) []scenario.Cell {
	out := cellsOf(cluster+"+"+mitigation, n, d)
	for i := range out {
		out[i].Shape.Cluster.Name = cluster
		out[i].Shape.ClusterMitigations = []string{mitigation}
	}
	return out
}

// layout is a split as shapes per shard, a shape split over shards written
// with its cell count: "a:3".
func layout(shards []Shard) [][]string {
	out := make([][]string, len(shards))
	for i, s := range shards {
		out[i] = []string{}
		for _, sh := range s.Shapes {
			n := 0
			for _, c := range s.Cells {
				if c.Shape.ID == sh {
					n++
				}
			}
			out[i] = append(out[i], fmt.Sprintf("%s:%d", sh, n))
		}
	}
	return out
}

func TestSplit(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name  string
		cells []scenario.Cell
		n     int
		want  [][]string
	}{
		{"one shard holds everything", slices.Concat(cellsOf("a", 3, m), cellsOf("b", 2, m)), 1,
			[][]string{{"a:3", "b:2"}}},
		{"a shape per shard", slices.Concat(cellsOf("a", 3, m), cellsOf("b", 3, m), cellsOf("c", 3, m)), 3,
			[][]string{{"a:3"}, {"b:3"}, {"c:3"}}},
		{"fewer shards than shapes: whole shapes, longest first", slices.Concat(cellsOf("a", 2, m), cellsOf("b", 4, m), cellsOf("c", 3, m)), 2,
			[][]string{{"b:4"}, {"a:2", "c:3"}}},
		{"one shape over every shard", cellsOf("a", 16, m), 16,
			[][]string{{"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}, {"a:1"}}},
		{"more shards than cells: empty shards", cellsOf("a", 3, m), 5,
			[][]string{{"a:1"}, {"a:1"}, {"a:1"}, {}, {}}},
		{"one long shape is split, the short ones stay whole", slices.Concat(cellsOf("a", 20, m), cellsOf("b", 2, m), cellsOf("c", 2, m)), 2,
			[][]string{{"a:10", "b:2"}, {"a:10", "c:2"}}},
		{"a split that shortens nothing is not made", slices.Concat(cellsOf("a", 4, m), cellsOf("b", 4, m), cellsOf("c", 4, m)), 5,
			[][]string{{"a:4"}, {"b:4"}, {"c:4"}, {}, {}}},
		{"splits that pay off together are made", slices.Concat(cellsOf("a", 4, m), cellsOf("b", 4, m), cellsOf("c", 4, m)), 6,
			[][]string{{"a:2"}, {"a:2"}, {"b:2"}, {"b:2"}, {"c:2"}, {"c:2"}}},
		// Halving a and b would save 5 s on the longest shard for two
		// clusters more (35 s on the mean shard).
		{"a split that saves less than its cluster costs is not made",
			slices.Concat(cellsOf("a", 4, m), cellsOf("b", 4, m), cellsOf("c", 1, m), cellsOf("d", 1, m), cellsOf("e", 1, m), cellsOf("f", 1, m)), 4,
			[][]string{{"a:4"}, {"b:4"}, {"c:1", "e:1"}, {"d:1", "f:1"}}},
		// a, a+autopath and a+arp-gc share a cluster (a family): together
		// they are one piece of 6 cells; b and c stay whole.
		{"a family of shapes is kept together", slices.Concat(cellsOf("a", 2, m), familyCellsOf("a", "autopath", 2, m),
			cellsOf("b", 3, m), familyCellsOf("a", "arp-gc", 2, m), cellsOf("c", 3, m)), 2,
			[][]string{{"a:2", "a+autopath:2", "a+arp-gc:2"}, {"b:3", "c:3"}}},
		{"nodelocaldns is not in the family", slices.Concat(cellsOf("a", 2, m), familyCellsOf("a", "nodelocaldns", 2, m),
			familyCellsOf("a", "autopath", 2, m)), 2,
			[][]string{{"a:2", "a+autopath:2"}, {"a+nodelocaldns:2"}}},
		{"cells that do not run are in no shard", slices.Concat(cellsOf("a", 2, m), cellsOf("x", 3, 0), cellsOf("b", 1, m)), 2,
			[][]string{{"a:2"}, {"b:1"}}},
		{"nothing to run", cellsOf("x", 3, 0), 3,
			[][]string{{}, {}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shards, err := Split(tc.cells, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := layout(shards); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("split into %d:\n got %v\nwant %v", tc.n, got, tc.want)
			}
			checkSplit(t, tc.cells, tc.n, shards)
		})
	}
}

func TestSplitRejectsACountOutOfRange(t *testing.T) {
	for _, n := range []int{-1, 0, MaxShards + 1} {
		if _, err := Split(cellsOf("a", 2, time.Minute), n); err == nil || !strings.Contains(err.Error(), "1 ≤ N ≤ 256") {
			t.Errorf("Split(%d): err = %v", n, err)
		}
	}
}

func TestCut(t *testing.T) {
	s := time.Second
	// Cell estimates are the duration plus 15 s: 30, 30, 30, 120, 30.
	cells := slices.Concat(cellsOf("a", 3, 15*s), cellsOf("b", 1, 105*s), cellsOf("c", 1, 15*s))
	for k, want := range map[int][]int{1: {5}, 2: {3, 2}, 3: {3, 1, 1}, 5: {1, 1, 1, 1, 1}} {
		var got []int
		for _, p := range cut(cells, k) {
			got = append(got, len(p))
		}
		if !slices.Equal(got, want) {
			t.Errorf("cut into %d: %v, want %v", k, got, want)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, s := range []string{"1/1", "2/4", "256/256"} {
		if _, _, err := ParseShard(s); err != nil {
			t.Errorf("ParseShard(%q): %v", s, err)
		}
	}
	i, n, _ := ParseShard("3/16")
	if i != 3 || n != 16 {
		t.Errorf("ParseShard(3/16) = %d, %d", i, n)
	}
	for _, s := range []string{"0/2", "3/2", "a", "1/0", "0/0", "1/257", "", "1/2/3", " 1/2", "-1/2", "1/", "/2", "1-2"} {
		_, _, err := ParseShard(s)
		if err == nil || !strings.Contains(err.Error(), "want i/N with 1 ≤ i ≤ N") {
			t.Errorf("ParseShard(%q): err = %v", s, err)
		}
	}
}

// checkSplit holds a split to what every split must be: n shards, numbered,
// disjoint, together exactly the cells that run, each in plan order with its
// shapes and estimate, and no shard empty while another holds two shapes.
func checkSplit(t *testing.T, cells []scenario.Cell, n int, shards []Shard) {
	t.Helper()
	if len(shards) != n {
		t.Fatalf("%d shards, want %d", len(shards), n)
	}
	pos := map[string]int{}
	var willRun []string
	for i, c := range cells {
		pos[c.ID] = i
		if c.Runs() {
			willRun = append(willRun, c.ID)
		}
	}
	seen := map[string]string{}
	empty, crowded := 0, 0
	for i, s := range shards {
		if s.Index != i+1 || s.Count != n {
			t.Errorf("shard %d is %s", i+1, s)
		}
		var shapes []string
		for j, c := range s.Cells {
			if other, ok := seen[c.ID]; ok {
				t.Errorf("cell %s in shards %s and %s", c.ID, other, s)
			}
			seen[c.ID] = s.String()
			if !c.Runs() {
				t.Errorf("shard %s holds %s, which does not run", s, c.ID)
			}
			if j > 0 && pos[s.Cells[j-1].ID] >= pos[c.ID] {
				t.Errorf("shard %s: %s before %s, against the plan's order", s, s.Cells[j-1].ID, c.ID)
			}
			if !slices.Contains(shapes, c.Shape.ID) {
				shapes = append(shapes, c.Shape.ID)
			}
		}
		if !slices.Equal(shapes, s.Shapes) {
			t.Errorf("shard %s: shapes %v, its cells have %v", s, s.Shapes, shapes)
		}
		if want := scenario.EstimateWallTime(s.Cells, 1); s.Estimate != want {
			t.Errorf("shard %s: estimate %s, want %s", s, s.Estimate, want)
		}
		switch {
		case len(s.Cells) == 0:
			empty++
		case len(scenario.Families(scenario.Plan(s.Cells), nil, true)) > 1:
			crowded++ // more than one cluster
		}
	}
	var union []string
	for _, s := range shards {
		union = append(union, s.IDs()...)
	}
	slices.SortFunc(union, func(a, b string) int { return pos[a] - pos[b] })
	if !slices.Equal(union, willRun) {
		t.Errorf("the shards hold %d cells, the plan runs %d: %v vs %v", len(union), len(willRun), union, willRun)
	}
	if empty > 0 && crowded > 0 {
		t.Errorf("%d empty shard(s) while %d hold more than one family of shapes: %v", empty, crowded, layout(shards))
	}
	again, err := Split(cells, n)
	if err != nil || !slices.EqualFunc(again, shards, func(a, b Shard) bool {
		return slices.Equal(a.IDs(), b.IDs()) && a.Estimate == b.Estimate
	}) {
		t.Errorf("a second split differs (err %v)", err)
	}
}

// likeThisHost marks what this lab's host cannot run as not run (no IPVS,
// no published images), so that some shapes have no cell to run.
func likeThisHost(cells []scenario.Cell) []scenario.Cell {
	out := slices.Clone(cells)
	for i := range out {
		cl := out[i].Shape.Cluster
		if out[i].Runs() && (cl.KubeProxy == "ipvs" || cl.PodNetwork == "calico" || cl.PodNetwork == "weave") {
			out[i].NotRun = "host: test"
		}
	}
	return out
}

// TestSplitShippedScenarios: for every scenario in scenarios/ and N = 1…16,
// the shards are disjoint, together the plan's cells that run, and none is
// empty while another holds two families of shapes (two clusters); splitting never makes the longest
// shard longer than keeping every shape whole.
func TestSplitShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		sc, err := scenario.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for variant, cells := range map[string][]scenario.Cell{"everything": sc.Expand(), "this host": likeThisHost(sc.Expand())} {
			t.Run(filepath.Base(f)+"/"+variant, func(t *testing.T) {
				whole := map[string][]scenario.Cell{}
				for _, c := range cells {
					if c.Runs() {
						whole[c.Shape.ID] = append(whole[c.Shape.ID], c)
					}
				}
				for n := 1; n <= 16; n++ {
					shards, err := Split(cells, n)
					if err != nil {
						t.Fatal(err)
					}
					checkSplit(t, cells, n, shards)
					var longest time.Duration
					for _, s := range shards {
						longest = max(longest, s.Estimate)
					}
					if n == 1 && longest != scenario.EstimateWallTime(cells, 1) {
						t.Errorf("one shard: %s, the plan %s", longest, scenario.EstimateWallTime(cells, 1))
					}
					if bound := wholeShapes(whole, n); longest > bound {
						t.Errorf("%d shards: longest %s, longer than with whole shapes (%s)", n, longest, bound)
					}
				}
			})
		}
	}
}

// wholeShapes is the longest shard when whole shapes go, longest first, to
// the least loaded of n shards.
func wholeShapes(shapes map[string][]scenario.Cell, n int) time.Duration {
	var costs []time.Duration
	for _, cells := range shapes {
		costs = append(costs, scenario.EstimateWallTime(cells, 1))
	}
	slices.Sort(costs)
	slices.Reverse(costs)
	load := make([]time.Duration, n)
	for _, c := range costs {
		load[slices.Index(load, slices.Min(load))] += c
	}
	return slices.Max(load)
}

func TestNewDocument(t *testing.T) {
	cells := slices.Concat(cellsOf("a", 2, time.Minute), cellsOf("x", 1, 0))
	shards, err := Split(cells, 3)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDocument("unit", cells, shards, 1)
	want := Totals{Cells: 3, WillRun: 2, NotRun: 1, Shapes: 2, ShapesWillRun: 1, EstimateSeconds: 70 + 2*75}
	if d.Totals != want {
		t.Errorf("totals %+v, want %+v", d.Totals, want)
	}
	if d.Cells[0].Status != WillRun || d.Cells[0].Shard != 1 || d.Cells[1].Shard != 2 {
		t.Errorf("cells %+v", d.Cells[:2])
	}
	if x := d.Cells[2]; x.Status != NotRun || x.Reason == "" || x.Shard != 0 {
		t.Errorf("cell that does not run: %+v", x)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`{"shard":"1/3","index":1,"count":3,"cells":["a_1"],"shapes":["a"],"estimate_seconds":145}`,
		`{"shard":"3/3","index":3,"count":3,"cells":[],"shapes":[],"estimate_seconds":0}`,
		`"status":"not-run","reason":"not applicable: test"}`,
	} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s:\n%s", s, b)
		}
	}
	if b, _ := json.Marshal(NewDocument("unit", cells, nil, 1)); strings.Contains(string(b), "shard") {
		t.Errorf("a plan without shards names one: %s", b)
	}
}
