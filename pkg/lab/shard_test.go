package lab

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/plan"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Two shapes this host runs, on the bare kernel, and a Calico one it does
// not (no published images): four cells each.
const shardYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: shards}
clusters:
  - {name: default}
  - {name: three, dns: {server: coredns, replicas: 3}}
  - {name: calico, podNetwork: calico}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`

// fakeHost is this lab's host with no published images in the store.
func fakeHost(context.Context) hostFacts {
	return hostFacts{kernel: noIPVS, have: func(string) bool { return false }}
}

func fakeEnv(context.Context, []scenario.Cell) results.Env {
	return results.Env{Kernel: "test", Extra: map[string]string{}}
}

// fakeRunOptions run file on fake clusters made by p.
func fakeRunOptions(p *fakeProvider, dir, file string) RunOptions {
	return RunOptions{Scenario: file, ResultsDir: dir, Provider: p, Progress: io.Discard,
		bringUp: bringUpWith(p), probe: fakeHost, hostEnv: fakeEnv}
}

// created lists the shapes whose cluster the provider was asked to make.
func created(ev *events) []string {
	var out []string
	for _, e := range ev.list() {
		if name, ok := strings.CutPrefix(e, "provider create "+cluster.NamePrefix+"-"); ok {
			out = append(out, name)
		}
	}
	return out
}

// TestRunShard: a shard run records shard.json and a status for its own
// cells only (shard 1 also for the cells the plan does not run), makes only
// its shapes' clusters, has a name of its own, and a resume keeps to it.
func TestRunShard(t *testing.T) {
	file := scenarioFile(t, shardYAML)
	cells := fileCells(t, file)
	markHostLimits(cells, fakeHost(context.Background()))
	split, err := plan.Split(cells, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("split: %v", layout(split))
	var notRun []string
	for _, c := range cells {
		if !c.Runs() {
			notRun = append(notRun, c.ID)
		}
	}
	if len(notRun) != 4 || len(split[0].Cells) != 4 || len(split[1].Cells) != 4 {
		t.Fatalf("the test wants 4 cells not run and 4 per shard: %v, %s", notRun, layout(split))
	}

	dir := t.TempDir()
	runs := map[int]results.RunDir{}
	for i := 1; i <= 2; i++ {
		ev := &events{}
		p := &fakeProvider{ev: ev, clusters: map[string]*cluster.Cluster{}}
		o := fakeRunOptions(p, dir, file)
		o.Shard = &results.Shard{Index: i, Count: 2}
		// The fake probes leave no summary: every cell is incomplete.
		res, err := Run(context.Background(), o)
		if !errors.Is(err, ErrCellsIncomplete) {
			t.Fatalf("shard %d/2: err = %v, want one wrapping ErrCellsIncomplete", i, err)
		}
		run := res.Run
		runs[i] = run
		if want := "-shard-" + string(rune('0'+i)) + "-of-2"; !strings.HasSuffix(run.Name(), want) {
			t.Errorf("shard %d/2 run is named %s, want the suffix %s", i, run.Name(), want)
		}
		got, ok, err := run.ReadShard()
		want := split[i-1].IDs()
		if err != nil || !ok || got.Index != i || got.Count != 2 || !slices.Equal(got.Cells, want) {
			t.Errorf("shard %d/2: shard.json %+v (ok %v, err %v), want cells %v", i, got, ok, err, want)
		}
		if i == 1 {
			want = append(want, notRun...)
		}
		checkStatuses(t, run, want)
		if got, want := created(ev), split[i-1].Shapes; !slices.Equal(got, want) {
			t.Errorf("shard %d/2 made clusters for %v, want %v", i, got, want)
		}
	}

	// The fake probes leave no summary: every cell is incomplete, so a
	// resume runs the shard's cells again, and only them.
	ev := &events{}
	p := &fakeProvider{ev: ev, clusters: map[string]*cluster.Cluster{}}
	o := fakeRunOptions(p, dir, "")
	o.Resume = runs[2].Dir
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("resume of shard 2/2: err = %v, want one wrapping ErrCellsIncomplete", err)
	}
	checkStatuses(t, runs[2], split[1].IDs())
	if got, want := created(ev), split[1].Shapes; !slices.Equal(got, want) {
		t.Errorf("the resumed shard made clusters for %v, want %v", got, want)
	}

	o.Shard = &results.Shard{Index: 1, Count: 2}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "it is shard 2/2, not 1/2") {
		t.Errorf("resume of shard 2/2 as 1/2: %v", err)
	}
}

// checkStatuses: the run has a status file for exactly these cells.
func checkStatuses(t *testing.T, run results.RunDir, want []string) {
	t.Helper()
	got, err := run.StatusCells()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: statuses of %v, want %v", run.Name(), got, want)
	}
}

func layout(shards []plan.Shard) []string {
	var out []string
	for _, s := range shards {
		out = append(out, s.String()+": "+strings.Join(s.IDs(), ","))
	}
	return out
}

func TestRunRejectsABadShard(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []results.Shard{{Index: 0, Count: 2}, {Index: 3, Count: 2}, {Index: 1, Count: 0}, {Index: 1, Count: plan.MaxShards + 1}} {
		p := &fakeProvider{ev: &events{}, clusters: map[string]*cluster.Cluster{}}
		o := fakeRunOptions(p, dir, "testdata/two-shapes.yaml")
		o.Shard = &s
		if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "1 ≤ i ≤ N") {
			t.Errorf("shard %s: err = %v", s, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a bad shard made run directories: %v", entries)
	}
}
