package lab

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
	"labrun.dev/labrun/pkg/scenario"
)

func testCells(t *testing.T) []scenario.Cell {
	t.Helper()
	// As on this machine: no published images, so the calico shape is not run.
	cells := fileCells(t, "testdata/two-shapes.yaml")
	markHostLimits(cells, hostFacts{kernel: noIPVS, have: func(string) bool { return false }})
	return cells
}

func cellByID(t *testing.T, id string) scenario.Cell {
	t.Helper()
	for _, c := range testCells(t) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no cell %s", id)
	return scenario.Cell{}
}

var threeNodes = []cluster.Node{
	{Name: "lab-control-plane", Role: "control-plane", IP: "172.18.0.2"},
	{Name: "lab-worker", Role: "worker", IP: "172.18.0.3"},
	{Name: "lab-worker2", Role: "worker", IP: "172.18.0.4"},
}

func TestClusterName(t *testing.T) {
	for shape, want := range map[string]string{
		"default":               "labrun-default",
		"default+nodelocaldns":  "labrun-default-nodelocaldns",
		"Big_Shape+delay-aaaa":  "labrun-big-shape-delay-aaaa",
		strings.Repeat("x", 60): "labrun-" + strings.Repeat("x", 33),
	} {
		if got := ClusterName("labrun", shape); got != want {
			t.Errorf("ClusterName(%q) = %q, want %q", shape, got, want)
		}
	}
}

func TestETA(t *testing.T) {
	cells := testCells(t)[:4] // the default shape's four cells of 10 s
	var e ETA
	if got, want := e.Remaining(cells, 0, 0, true), 4*(10*time.Second+scenario.EstimateCellOverhead)+scenario.EstimateClusterDown; got != want {
		t.Errorf("before any cell: %s, want %s", got, want)
	}
	e.Observe(16*time.Second, cells[0]) // 6 s overhead
	e.Observe(20*time.Second, cells[1]) // 10 s overhead
	if e.Overhead() != 8*time.Second {
		t.Errorf("mean overhead %s, want 8s", e.Overhead())
	}
	if got, want := e.Remaining(cells[2:], 1, 0, false), 2*18*time.Second+scenario.EstimateClusterUp+scenario.EstimateClusterDown; got != want {
		t.Errorf("two cells and a cluster to come: %s, want %s", got, want)
	}
	if got, want := e.Remaining(cells[2:], 1, 2, false), 2*18*time.Second+scenario.EstimateClusterUp+scenario.EstimateClusterDown+2*shapeSwitch; got != want {
		t.Errorf("two cells, a cluster and two shape switches to come: %s, want %s", got, want)
	}
	e.Observe(time.Second, cells[2]) // faster than its duration: no negative overhead
	if e.Overhead() != 16*time.Second/3 {
		t.Errorf("mean overhead %s", e.Overhead())
	}
}

func TestCellsToRun(t *testing.T) {
	run, err := results.Create(t.TempDir(), "r")
	if err != nil {
		t.Fatal(err)
	}
	cells := testCells(t)
	todo, err := cellsToRun(run, cells, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(todo) != 4 {
		t.Fatalf("%d cells to run, want the default shape's 4", len(todo))
	}
	st, ok, err := run.ReadStatus("calico_glibc_none")
	if err != nil || !ok || st.State != results.NotRun || !strings.Contains(st.Reason, "calico") {
		t.Errorf("calico cell status %+v ok=%v err=%v", st, ok, err)
	}
	// Resume: a complete cell is skipped, an incomplete one runs again.
	if err := run.WriteStatus(results.Status{Cell: todo[0].ID, State: results.Complete}); err != nil {
		t.Fatal(err)
	}
	if err := run.WriteStatus(results.Status{Cell: todo[1].ID, State: results.Incomplete, Reason: "interrupted"}); err != nil {
		t.Fatal(err)
	}
	again, err := cellsToRun(run, cells, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cellIDs(again); !slices.Equal(got, cellIDs(todo[1:])) {
		t.Errorf("resume runs %v, want %v", got, cellIDs(todo[1:]))
	}
}

func TestOpenRunResumeChecksTheScenario(t *testing.T) {
	dir := t.TempDir()
	sc, run, made, err := openRun(RunOptions{Scenario: "testdata/two-shapes.yaml", ResultsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !made {
		t.Error("a new run's directory is not said to be made")
	}
	if !strings.HasPrefix(run.Name(), sc.Metadata.Name+"-") {
		t.Errorf("run name %s", run.Name())
	}
	if _, err := os.Stat(run.ScenarioPath()); err != nil {
		t.Fatal(err)
	}
	if _, _, made, err := openRun(RunOptions{Resume: run.Dir}); err != nil || made {
		t.Errorf("resume from the recorded scenario: %v (made %v)", err, made)
	}
	if _, _, _, err := openRun(RunOptions{Resume: run.Dir, Scenario: "../../scenarios/grpc.yaml"}); err == nil || !strings.Contains(err.Error(), "does not have the cells") {
		t.Errorf("resume with another scenario: err = %v", err)
	}
}

func TestCellCountersAndDropsLine(t *testing.T) {
	before := collect.Snapshot{
		Conntrack: map[string]collect.ConntrackStats{"a": {"insert_failed": 1, "clashres": 10}, "b": {"insert_failed": 0, "clashres": 0}},
		Emulator:  map[string]emulator.Snapshot{"a": {}, "b": {Counts: emulator.Counts{Dropped: 2}}},
	}
	after := collect.Snapshot{
		Conntrack: map[string]collect.ConntrackStats{"a": {"insert_failed": 1, "clashres": 15}, "b": {"insert_failed": 3, "clashres": 1}},
		Emulator:  map[string]emulator.Snapshot{"a": {Counts: emulator.Counts{Dropped: 4}}, "b": {Counts: emulator.Counts{Dropped: 7}}},
	}
	c := collect.CellCounters("cell", before, after)
	if len(c.Nodes) != 2 || c.Nodes["b"].EmulatorAfter.Dropped != 7 || c.Nodes["a"].Before["clashres"] != 10 {
		t.Fatalf("counters %+v", c)
	}
	if got, want := dropsLine(c), "insert_failed +3, clashres +6, emulator dropped +9"; got != want {
		t.Errorf("dropsLine = %q, want %q", got, want)
	}
	bare := collect.CellCounters("cell", collect.Snapshot{Conntrack: before.Conntrack}, collect.Snapshot{Conntrack: after.Conntrack})
	if got := dropsLine(bare); strings.Contains(got, "emulator") || bare.Nodes["a"].EmulatorAfter != nil {
		t.Errorf("a bare-kernel cell has no emulator counters: %q %+v", got, bare.Nodes["a"])
	}
}

func TestCannotRunAnExplicitProbability(t *testing.T) {
	cell := cellByID(t, "default_glibc_none")
	p := 0.5
	e := *cell.Chaos.RaceEmulator
	e.Probability = &p
	cell.Chaos.RaceEmulator = &e
	if why := cannotRun(cell); !strings.Contains(why, "probability") {
		t.Errorf("cannotRun(explicit probability) = %q", why)
	}
}

// deleteRecorder is a provider whose Delete records the context it gets.
type deleteRecorder struct {
	cluster.Provider
	err      error
	deadline bool
	left     time.Duration
}

func (d *deleteRecorder) Delete(ctx context.Context, _ string) error {
	d.err = ctx.Err()
	var when time.Time
	when, d.deadline = ctx.Deadline()
	d.left = time.Until(when)
	return nil
}

// TestDeleteFailed: a cluster whose setup failed is deleted with a context of
// its own: live although the run's was cancelled (Ctrl-C), and bounded by
// cleanupTimeout (a hung Docker).
func TestDeleteFailed(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"run going on", context.Background()},
		{"run interrupted", cancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &deleteRecorder{}
			deleteFailed(tc.ctx, d, "labrun-x", io.Discard)
			if d.err != nil || !d.deadline || d.left <= 0 || d.left > cleanupTimeout {
				t.Errorf("Delete's context: err %v, deadline %v in %s; want live, within %s", d.err, d.deadline, d.left, cleanupTimeout)
			}
		})
	}
}
