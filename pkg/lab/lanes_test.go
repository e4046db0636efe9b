package lab

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/scenario"
)

// One shape of four bare-kernel cells, two at once by the scenario's default.
const sideBySideYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: lanes}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
cellsAtOnce: 2
`

// lanesRun runs the scenario with cellsAtOnce (0: the scenario's) on fake
// clusters; onExec sees every node command.
func lanesRun(t *testing.T, file string, cellsAtOnce int, onExec func(node, what string)) (*RunResult, *events, *bytes.Buffer, []cluster.Spec) {
	t.Helper()
	ev := &events{}
	var out bytes.Buffer
	var mu sync.Mutex
	var specs []cluster.Spec
	p := &fakeProvider{ev: ev, sc: script{onExec: onExec}, clusters: map[string]*cluster.Cluster{}}
	up := bringUpWith(specRecorder{p, func(s cluster.Spec) { mu.Lock(); specs = append(specs, s); mu.Unlock() }})
	res, err := Run(context.Background(), RunOptions{Scenario: file, ResultsDir: t.TempDir(), Provider: p, Progress: &out,
		CellsAtOnce: cellsAtOnce, probe: fakeHost, hostEnv: fakeEnv, machine: bigMachine, bringUp: up})
	// The fake probes leave no summary: every cell is incomplete.
	if !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("cells at once %d: err = %v, want ErrCellsIncomplete\n%s", cellsAtOnce, err, out.String())
	}
	return res, ev, &out, specs
}

// specRecorder is a provider that tells what it was asked to make.
type specRecorder struct {
	*fakeProvider
	saw func(cluster.Spec)
}

func (p specRecorder) Create(ctx context.Context, s cluster.Spec) (*cluster.Cluster, error) {
	p.saw(s)
	return p.fakeProvider.Create(ctx, s)
}

// TestRunCellsSideBySide: with cellsAtOnce 2 the shape's cluster has twice
// its workers, kept for the cells; two cells run at once (each waits at its
// first counters read until the other lane reads its own); each cell's
// counters are of one lane's workers only, both lanes are used, and every
// cell ends with the status a run one cell at a time gives it.
func TestRunCellsSideBySide(t *testing.T) {
	file := scenarioFile(t, sideBySideYAML)
	cells := fileCells(t, file)
	lane := map[string]int{"labrun-default-worker": 1, "labrun-default-worker2": 1, "labrun-default-worker3": 2, "labrun-default-worker4": 2}

	// Each lane's first counters read waits (10 s at most) for the other's.
	var once [3]sync.Once
	read := [3]chan struct{}{nil, make(chan struct{}), make(chan struct{})}
	overlap := func(node, what string) {
		l := lane[node]
		if what != "counters" || l == 0 {
			return
		}
		once[l].Do(func() { close(read[l]) })
		select {
		case <-read[3-l]:
		case <-time.After(10 * time.Second):
			t.Errorf("lane %d read counters on %s, and the other lane did not in 10 s: the cells did not run side by side", l, node)
		}
	}
	res, _, out, specs := lanesRun(t, file, 0, overlap)
	t.Logf("progress:\n%s", out)
	if len(specs) != 1 || specs[0].Workers != 4 || !specs[0].CellWorkers {
		t.Fatalf("clusters asked for %+v: want one of 4 workers kept for the cells", specs)
	}
	if env, ok, err := res.Run.ReadEnv(); err != nil || !ok || env.Extra["cells_at_once"] != "2" {
		t.Errorf("env.json: cells_at_once %q (ok %v, err %v), want 2: the report says so", env.Extra["cells_at_once"], ok, err)
	}
	used := map[int]int{}
	for _, c := range cells {
		counters, ok, err := res.Run.ReadCounters(c.ID)
		if err != nil || !ok {
			t.Fatalf("%s: counters: ok %v, err %v", c.ID, ok, err)
		}
		nodes := slices.Sorted(maps.Keys(counters.Nodes))
		if len(nodes) != 2 || lane[nodes[0]] == 0 || lane[nodes[0]] != lane[nodes[1]] {
			t.Errorf("%s: counters of %v: want the two workers of one lane", c.ID, nodes)
			continue
		}
		used[lane[nodes[0]]]++
	}
	if used[1] == 0 || used[2] == 0 {
		t.Errorf("cells per lane %v: want both lanes used", used)
	}
	if !strings.Contains(out.String(), "4 to run on 1 cluster(s), up to 2 cells at once on each") ||
		!strings.Contains(out.String(), "2 cells at once, each on workers of its own: lane 1 of 2 (labrun-default-worker, labrun-default-worker2); lane 2 of 2 (labrun-default-worker3, labrun-default-worker4)") {
		t.Errorf("progress does not say the cells run two at once, on which workers")
	}

	// One at a time (the flag overrides the scenario): two workers, as
	// before, and the same statuses.
	alone, _, _, specs := lanesRun(t, file, 1, nil)
	if len(specs) != 1 || specs[0].Workers != 2 || specs[0].CellWorkers {
		t.Fatalf("one at a time: clusters asked for %+v: want one of 2 workers", specs)
	}
	got, want := statuses(t, res.Run, cells), statuses(t, alone.Run, cells)
	for _, c := range cells {
		g, w := got[c.ID], want[c.ID]
		g.Reason = strings.ReplaceAll(g.Reason, res.Run.Name(), "RUN")
		w.Reason = strings.ReplaceAll(w.Reason, alone.Run.Name(), "RUN")
		if g != w {
			t.Errorf("%s: side by side %+v, one at a time %+v", c.ID, g, w)
		}
	}
}

// On another pod network than the lab's own the scenario's cellsAtOnce
// runs the cells one at a time on a cluster of the shape's workers, and the
// progress says why.
func TestCellsAtOnceOtherPodNetwork(t *testing.T) {
	file := scenarioFile(t, strings.Replace(sideBySideYAML, "workload:", "clusters: [{name: default, podNetwork: kube-router}]\nworkload:", 1))
	_, _, out, specs := lanesRun(t, file, 0, nil)
	if len(specs) != 1 || specs[0].Workers != 2 || specs[0].CellWorkers {
		t.Errorf("clusters asked for %+v: want one of 2 workers", specs)
	}
	if !strings.Contains(out.String(), "cluster labrun-default: one cell at a time: pod network kube-router: its agents act on every pod of the cluster") {
		t.Errorf("progress does not say why the cells run one at a time:\n%s", out)
	}
}

// The plan's lanes (scenario.Lanes) are the run's: the same worker bound.
func TestLanesFor(t *testing.T) {
	if scenario.MaxClusterWorkers != cluster.MaxWorkers {
		t.Errorf("scenario.MaxClusterWorkers %d, cluster.MaxWorkers %d: the plan's lanes would not be the run's", scenario.MaxClusterWorkers, cluster.MaxWorkers)
	}
	shape := scenario.Cluster{Nodes: scenario.Nodes{ControlPlanes: 1, Workers: 3}}
	if got, _ := lanesFor(4, shape, 9); got != 2 {
		t.Errorf("lanesFor(4, 3 workers, 9 cells) = %d, want 2", got)
	}
}

// A cluster of lanes that memory cannot hold: asked for with the flag, the
// run is refused (ErrTooParallel, exit 2) and leaves no run directory; the
// scenario's default runs the cells one at a time and says so.
func TestCellsAtOnceMemory(t *testing.T) {
	file := scenarioFile(t, sideBySideYAML)
	small := func() machine { return machine{memAvailable: 2 << 30, cpus: 2} } // 3 nodes fit, 5 do not
	for _, flag := range []int{0, 2} {
		dir := t.TempDir()
		var out bytes.Buffer
		var specs []cluster.Spec
		p := &fakeProvider{ev: &events{}, clusters: map[string]*cluster.Cluster{}}
		var mu sync.Mutex
		up := bringUpWith(specRecorder{p, func(s cluster.Spec) { mu.Lock(); specs = append(specs, s); mu.Unlock() }})
		_, err := Run(context.Background(), RunOptions{Scenario: file, ResultsDir: dir, Provider: p, Progress: &out,
			CellsAtOnce: flag, probe: fakeHost, hostEnv: fakeEnv, machine: small, bringUp: up})
		switch flag {
		case 2:
			if !errors.Is(err, ErrTooParallel) || !strings.Contains(err.Error(), "--cells-at-once 2: a cluster of 5 nodes needs ≈ 2.9 GiB (600 MiB a node), 2.0 GiB available") {
				t.Errorf("--cells-at-once 2 in 2 GiB: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 || len(specs) != 0 {
				t.Errorf("refused, yet left %v and made %v", entries, specs)
			}
		default:
			if !errors.Is(err, ErrCellsIncomplete) { // the fake probes leave no summary
				t.Fatalf("the scenario's cellsAtOnce 2 in 2 GiB: %v", err)
			}
			if len(specs) != 1 || specs[0].Workers != 2 || specs[0].CellWorkers {
				t.Errorf("clusters %+v: want one of 2 workers", specs)
			}
			if !strings.Contains(out.String(), "cellsAtOnce 2 of scenario lanes: a cluster of 5 nodes needs ≈ 2.9 GiB (600 MiB a node), 2.0 GiB available: the cells run one at a time") {
				t.Errorf("progress does not say why the cells run one at a time:\n%s", out.String())
			}
		}
	}
}

func TestCheckLanes(t *testing.T) {
	small := machine{memAvailable: 4 << 30, cpus: 2} // 6 nodes of 600 MiB fit, 7 do not
	if err := checkLanes([]int{7}, []int{3}, small); err == nil ||
		err.Error() != "a cluster of 7 nodes needs ≈ 4.1 GiB (600 MiB a node), 4.0 GiB available" {
		t.Errorf("7 nodes in 4 GiB: %v", err)
	}
	if err := checkLanes([]int{5}, []int{2}, small); err != nil {
		t.Errorf("5 nodes in 4 GiB: %v", err)
	}
	if err := checkLanes([]int{9}, []int{1}, small); err != nil {
		t.Errorf("one lane is not checked (as before): %v", err)
	}
}
