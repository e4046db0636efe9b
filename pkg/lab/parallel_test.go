package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Three shapes this host runs (a, b, c), two cells each.
const threeShapesYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: par}
clusters:
  - {name: a}
  - {name: b}
  - {name: c, nodes: {controlPlanes: 1, workers: 3}}
workload:
  resolvers: [glibc, musl]
  mitigations: [none]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`

func threeShapes(t *testing.T) (file string, cells []scenario.Cell) {
	t.Helper()
	file = scenarioFile(t, threeShapesYAML)
	cells = fileCells(t, file)
	if shapes := scenario.Plan(cells); len(shapes) != 3 || len(cells) != 6 {
		t.Fatalf("the test wants 3 shapes of 2 cells: %d shapes, %d cells", len(shapes), len(cells))
	}
	return file, cells
}

// bigMachine holds any number of the test's clusters.
func bigMachine() machine { return machine{memAvailable: 64 << 30, cpus: 8} }

// alive counts the fake clusters that exist: now, at most, and every one
// made and deleted.
type alive struct {
	mu              sync.Mutex
	now, most       int
	made, deleted   []string
	bothUp          chan struct{} // closed when two clusters exist at once
	closeBothUpOnce sync.Once
}

func newAlive() *alive { return &alive{bothUp: make(chan struct{})} }

func (a *alive) create(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now++
	a.most = max(a.most, a.now)
	a.made = append(a.made, name)
	if a.now >= 2 {
		a.closeBothUpOnce.Do(func() { close(a.bothUp) })
	}
}

func (a *alive) delete(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now--
	a.deleted = append(a.deleted, name)
}

// countingProvider is the fake provider, counting the clusters alive.
type countingProvider struct {
	*fakeProvider
	a *alive
}

func (p countingProvider) Create(ctx context.Context, s cluster.Spec) (*cluster.Cluster, error) {
	c, err := p.fakeProvider.Create(ctx, s)
	if err == nil {
		p.a.create(s.Name)
	}
	return c, err
}

func (p countingProvider) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	_, ok := p.clusters[name]
	p.mu.Unlock()
	err := p.fakeProvider.Delete(ctx, name)
	if ok && err == nil {
		p.a.delete(name)
	}
	return err
}

// parallelRun is a run of the three shapes on counting fake clusters.
// The first two bring-ups wait (up to 10 s) until two clusters exist, so
// that shapes overlap however fast the fake cells are; fail names a shape
// whose bring-up fails.
type parallelRun struct {
	ev   *events
	p    countingProvider
	a    *alive
	o    RunOptions
	mu   sync.Mutex
	ups  int
	fail string // a shape whose bring-up fails
	// panics makes the failure a panic.
	panics bool
}

func newParallelRun(t *testing.T, dir, file string, parallel int, hook func()) *parallelRun {
	t.Helper()
	ev := &events{}
	a := newAlive()
	fp := &fakeProvider{ev: ev, hook: hook, clusters: map[string]*cluster.Cluster{}}
	r := &parallelRun{ev: ev, a: a, p: countingProvider{fp, a}}
	up := bringUpWith(r.p)
	r.o = RunOptions{Scenario: file, ResultsDir: dir, Provider: r.p, Progress: &bytes.Buffer{}, Parallel: parallel,
		probe: fakeHost, hostEnv: fakeEnv, machine: bigMachine,
		bringUp: func(ctx context.Context, o UpOptions) (*Testbed, error) {
			r.mu.Lock()
			r.ups++
			n, fail, panics := r.ups, r.fail, r.panics
			r.mu.Unlock()
			if fail != "" && strings.HasSuffix(o.Name, "-"+fail) {
				if panics {
					panic("scripted bring-up panic of " + o.Name)
				}
				return nil, fmt.Errorf("scripted bring-up failure of %s", o.Name)
			}
			tb, err := up(ctx, o)
			if err != nil || parallel < 2 || n > 2 {
				return tb, err
			}
			select {
			case <-a.bothUp:
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no second cluster came up beside it in 10 s", o.Name)
			}
			return tb, nil
		}}
	return r
}

// statuses are the run's cell statuses by cell, their times cleared and
// the run's directory in their reasons written RUN.
func statuses(t *testing.T, run results.RunDir, cells []scenario.Cell) map[string]results.Status {
	t.Helper()
	out := map[string]results.Status{}
	for _, c := range cells {
		st, ok, err := run.ReadStatus(c.ID)
		if err != nil || !ok {
			t.Fatalf("%s: status of %s: ok %v, err %v", run.Name(), c.ID, ok, err)
		}
		st.Started, st.Finished = time.Time{}, time.Time{}
		st.Reason = strings.ReplaceAll(st.Reason, run.Dir, "RUN")
		out[c.ID] = st
	}
	return out
}

// TestRunParallelSameStatuses: three shapes two at a time give every cell
// the status a run one shape after another gives it, and make and delete
// the same clusters.
func TestRunParallelSameStatuses(t *testing.T) {
	file, cells := threeShapes(t)
	var got [2]map[string]results.Status
	var made [2][]string
	for i, parallel := range []int{1, 2} {
		r := newParallelRun(t, t.TempDir(), file, parallel, nil)
		res, err := Run(context.Background(), r.o)
		// The fake probes leave no summary: every cell is incomplete.
		if !errors.Is(err, ErrCellsIncomplete) {
			t.Fatalf("--parallel %d: err = %v, want ErrCellsIncomplete", parallel, err)
		}
		got[i] = statuses(t, res.Run, cells)
		made[i] = slices.Sorted(slices.Values(r.a.made))
		if deleted := slices.Sorted(slices.Values(r.a.deleted)); !slices.Equal(deleted, made[i]) {
			t.Errorf("--parallel %d: made %v, deleted %v", parallel, made[i], deleted)
		}
		t.Logf("--parallel %d: progress:\n%s", parallel, r.o.Progress)
	}
	for _, c := range cells {
		if got[0][c.ID] != got[1][c.ID] {
			t.Errorf("%s: one after another %+v, two at a time %+v", c.ID, got[0][c.ID], got[1][c.ID])
		}
	}
	if !slices.Equal(made[0], made[1]) || len(made[0]) != 3 {
		t.Errorf("clusters made one after another %v, two at a time %v", made[0], made[1])
	}
}

// TestRunParallelOverlaps: with --parallel 2 two clusters exist at once at
// some point, never three; the progress is whole lines, each naming its
// cluster or cell.
func TestRunParallelOverlaps(t *testing.T) {
	file, cells := threeShapes(t)
	r := newParallelRun(t, t.TempDir(), file, 2, nil)
	var out bytes.Buffer
	r.o.Progress = &out
	if _, err := Run(context.Background(), r.o); !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("err = %v, want ErrCellsIncomplete", err)
	}
	if r.a.most != 2 {
		t.Errorf("at most %d clusters at once, want 2", r.a.most)
	}
	if r.a.now != 0 || len(r.a.made) != 3 {
		t.Errorf("made %v, %d left", r.a.made, r.a.now)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !strings.Contains(lines[0], "6 to run on 3 cluster(s), 2 at once; estimated ") {
		t.Errorf("first line %q", lines[0])
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "report: ") {
			continue
		}
		named := strings.Contains(l, cluster.NamePrefix+"-")
		for _, c := range cells {
			named = named || strings.Contains(l, c.ID)
		}
		if !named {
			t.Errorf("a line that names no cluster nor cell: %q", l)
		}
	}
	t.Logf("progress:\n%s", out.String())
}

// TestRunParallelInterrupted: Ctrl-C while two shapes run: both clusters
// are deleted, the third is never made, every cell is incomplete with the
// interrupt as its reason, and Run says it was interrupted. A resume, two
// at a time, runs just the cells that did not complete.
func TestRunParallelInterrupted(t *testing.T) {
	file, cells := threeShapes(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r *parallelRun
	// The first probe pod made, once both clusters are up, is Ctrl-C.
	r = newParallelRun(t, t.TempDir(), file, 2, func() {
		select {
		case <-r.a.bothUp:
			cancel()
		default:
		}
	})
	res, err := Run(ctx, r.o)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if r.a.now != 0 || len(r.a.made) != 2 || slices.Contains(r.a.made, "labrun-c") {
		t.Errorf("made %v (want a and b), %d not deleted", r.a.made, r.a.now)
	}
	if left, _ := r.p.List(context.Background()); len(left) != 0 {
		t.Errorf("clusters left: %v", left)
	}
	sts := statuses(t, res.Run, cells)
	for _, c := range cells {
		st := sts[c.ID]
		if st.State != results.Incomplete || !strings.HasPrefix(st.Reason, "interrupted (Ctrl-C)") {
			t.Errorf("%s: %s %q, want incomplete, interrupted", c.ID, st.State, st.Reason)
		}
		if c.Shape.ID == "c" && st.Reason != "interrupted (Ctrl-C) before this cell ran; --resume runs it" {
			t.Errorf("%s (never reached): reason %q", c.ID, st.Reason)
		}
	}

	// Resume: the cells of a count as complete (as if they had measured
	// something); the others run, two shapes at a time.
	for _, c := range cells {
		if c.Shape.ID == "a" {
			if err := res.Run.WriteStatus(results.Status{Cell: c.ID, State: results.Complete}); err != nil {
				t.Fatal(err)
			}
		}
	}
	again := newParallelRun(t, "", "", 2, nil)
	again.o.Resume = res.Run.Dir
	if _, err := Run(context.Background(), again.o); !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("resume: err = %v, want ErrCellsIncomplete (the fake probes leave no summary)", err)
	}
	if got := slices.Sorted(slices.Values(again.a.made)); !slices.Equal(got, []string{"labrun-b", "labrun-c"}) {
		t.Errorf("the resume made %v, want labrun-b and labrun-c", got)
	}
	if again.a.most != 2 || again.a.now != 0 {
		t.Errorf("the resume had at most %d clusters at once (want 2), %d left", again.a.most, again.a.now)
	}
	sts = statuses(t, res.Run, cells)
	for _, c := range cells {
		st := sts[c.ID]
		switch {
		case c.Shape.ID == "a" && st.State != results.Complete:
			t.Errorf("%s ran again: %+v", c.ID, st)
		case c.Shape.ID != "a" && strings.HasPrefix(st.Reason, "interrupted"):
			t.Errorf("%s did not run again: %+v", c.ID, st)
		}
	}
}

// TestRunParallelOneShapeFails: a shape whose cluster does not come up
// (an error, a panic) leaves its cells not reached; the other shapes run
// to the end, and Run returns the failure: shapes one at a time or two at
// once alike.
func TestRunParallelOneShapeFails(t *testing.T) {
	for _, tc := range []struct {
		parallel int
		panics   bool
	}{{1, false}, {1, true}, {2, false}, {2, true}} {
		parallel, panics := tc.parallel, tc.panics
		t.Run(fmt.Sprintf("parallel=%d/panics=%v", parallel, panics), func(t *testing.T) {
			file, cells := threeShapes(t)
			r := newParallelRun(t, t.TempDir(), file, parallel, nil)
			r.fail, r.panics = "a", panics
			want := "scripted bring-up failure of labrun-a"
			if panics {
				want = "shape a: panic: scripted bring-up panic of labrun-a"
			}
			res, err := Run(context.Background(), r.o)
			if err == nil || errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if got := slices.Sorted(slices.Values(r.a.made)); !slices.Equal(got, []string{"labrun-b", "labrun-c"}) || r.a.now != 0 {
				t.Errorf("made %v, %d left; want labrun-b and labrun-c, deleted", got, r.a.now)
			}
			sts := statuses(t, res.Run, cells)
			for _, c := range cells {
				st := sts[c.ID]
				notReached := strings.HasPrefix(st.Reason, "not reached: ")
				if st.State != results.Incomplete || notReached != (c.Shape.ID == "a") {
					t.Errorf("%s: %s %q", c.ID, st.State, st.Reason)
				}
			}
		})
	}
}

// TestRunParallelTooMany: more clusters than memory holds is refused before
// anything runs, with the numbers, and leaves no run directory.
func TestRunParallelTooMany(t *testing.T) {
	file, _ := threeShapes(t)
	dir := t.TempDir()
	r := newParallelRun(t, dir, file, 3, nil)
	r.o.machine = func() machine { return machine{memAvailable: 5 << 30, cpus: 8} }
	_, err := Run(context.Background(), r.o)
	want := "--parallel 3: 3 clusters of 3 to 4 nodes (10 in all) need ≈ 5.9 GiB (600 MiB a node), 5.0 GiB available; at most 2 fit"
	if !errors.Is(err, ErrTooParallel) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	if len(r.a.made) != 0 {
		t.Errorf("clusters made: %v", r.a.made)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a refused run left its directory: %v", entries)
	}
}

func TestParallelism(t *testing.T) {
	const gb = 1 << 30
	three := []int{3, 3, 3}
	for _, tc := range []struct {
		name  string
		want  int
		nodes []int
		m     machine
		n     int
		err   string
		note  string
	}{
		{"unset", 0, three, machine{memAvailable: 1, cpus: 1}, 1, "", ""},
		{"one: unchecked", 1, three, machine{memAvailable: 1, cpus: 1}, 1, "", ""},
		{"fits", 2, three, machine{memAvailable: 8 * gb, cpus: 4}, 2, "", ""},
		{"no more than shapes", 8, three, machine{memAvailable: 8 * gb, cpus: 4}, 3, "", ""},
		{"one shape", 4, []int{3}, machine{memAvailable: 1, cpus: 1}, 1, "", ""},
		{"more than memory", 4, []int{3, 3, 3, 3}, machine{memAvailable: 52 * gb / 10, cpus: 8}, 0,
			"--parallel 4: 4 clusters of 3 nodes need ≈ 7.0 GiB (600 MiB a node), 5.2 GiB available; at most 2 fit", ""},
		{"not even two", 2, three, machine{memAvailable: 2 * gb, cpus: 8}, 0, "at most 1 fits: leave --parallel out", ""},
		{"more than CPUs: a warning", 3, three, machine{memAvailable: 8 * gb, cpus: 2}, 3, "", "3 clusters at once on 2 CPUs"},
		{"memory unknown", 3, three, machine{memErr: errors.New("no /proc"), cpus: 4}, 3, "", "memory available unknown"},
		{"auto: memory", ParallelAuto, []int{3, 3, 3, 3}, machine{memAvailable: 52 * gb / 10, cpus: 8}, 2, "", "auto: 2 at once (4 cluster shapes, memory for 2"},
		{"auto: CPUs", ParallelAuto, three, machine{memAvailable: 64 * gb, cpus: 2}, 2, "", "2 CPUs"},
		{"auto: shapes", ParallelAuto, three, machine{memAvailable: 64 * gb, cpus: 16}, 3, "", ""},
		{"auto: nothing fits", ParallelAuto, three, machine{memAvailable: gb, cpus: 16}, 1, "", "memory for 0"},
		{"negative", -2, three, bigMachine(), 0, "--parallel -2: want a number of clusters ≥ 1, or auto", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, notes, err := parallelism(tc.want, tc.nodes, tc.m)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || n != tc.n {
				t.Errorf("parallelism = %d, %v; want %d", n, err, tc.n)
			}
			if all := strings.Join(notes, "\n"); !strings.Contains(all, tc.note) || (tc.note == "" && all != "" && tc.want != ParallelAuto) {
				t.Errorf("notes %q, want %q", all, tc.note)
			}
		})
	}
}

func TestAutoParallel(t *testing.T) {
	for _, tc := range []struct{ shapes, fit, cpus, want int }{
		{8, 8, 8, 8},
		{3, 8, 8, 3},  // no more than shapes
		{8, 2, 8, 2},  // memory
		{8, 8, 4, 4},  // CPUs
		{8, 0, 4, 1},  // at least one
		{0, 4, 4, 1},  // nothing to run
		{14, 5, 2, 2}, // nightly's shapes on a 2-CPU runner
	} {
		if got := AutoParallel(tc.shapes, tc.fit, tc.cpus); got != tc.want {
			t.Errorf("AutoParallel(shapes %d, fit %d, cpus %d) = %d, want %d", tc.shapes, tc.fit, tc.cpus, got, tc.want)
		}
	}
}

func TestFitClusters(t *testing.T) {
	for _, tc := range []struct {
		nodes []int
		avail uint64
		want  int
	}{
		{[]int{3, 3, 3}, 9 * NodeMemory, 3},
		{[]int{3, 3, 3}, 9*NodeMemory - 1, 2},
		{[]int{2, 5, 3}, 8 * NodeMemory, 2}, // the largest first: 5 + 3
		{[]int{2, 5, 3}, 7 * NodeMemory, 1},
		{[]int{3}, NodeMemory, 0},
	} {
		if got := fitClusters(tc.nodes, tc.avail); got != tc.want {
			t.Errorf("fitClusters(%v, %d MiB) = %d, want %d", tc.nodes, tc.avail>>20, got, tc.want)
		}
	}
}

func TestMemAvailable(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "meminfo")
	os.WriteFile(good, []byte("MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    5452596 kB\n"), 0o644)
	if got, err := memAvailable(good); err != nil || got != 5452596<<10 {
		t.Errorf("memAvailable = %d, %v", got, err)
	}
	bad := filepath.Join(dir, "old")
	os.WriteFile(bad, []byte("MemTotal:        8000000 kB\n"), 0o644)
	if _, err := memAvailable(bad); err == nil {
		t.Error("no MemAvailable line: no error")
	}
	if m := readMachine(); m.cpus < 1 || (m.memErr == nil && m.memAvailable == 0) {
		t.Errorf("this machine: %+v", m)
	}
}

// TestShapeWriter: lines are written whole, one Write each, named by the
// cluster unless they name it or a cell of the shape already.
func TestShapeWriter(t *testing.T) {
	var sink bytes.Buffer
	var writes []string
	w := &shapeWriter{sink: writerFunc(func(p []byte) (int, error) {
		writes = append(writes, string(p))
		return sink.Write(p)
	}), name: "labrun-a", cells: []string{"a_glibc_none"}}
	fmt.Fprint(w, "kind: ✓ Preparing ")
	fmt.Fprintln(w, "nodes")
	fmt.Fprintf(w, "cluster labrun-a: ready\ncell 1/2 a_glibc_none: complete\nimages: 3 steps\npart")
	w.Flush()
	want := []string{
		"cluster labrun-a: kind: ✓ Preparing nodes\n",
		"cluster labrun-a: ready\ncell 1/2 a_glibc_none: complete\ncluster labrun-a: images: 3 steps\n",
		"cluster labrun-a: part\n",
	}
	if !slices.Equal(writes, want) {
		t.Errorf("writes\n%q\nwant\n%q", writes, want)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestETARunRemaining: with one slot the estimate is Remaining's; with two,
// shapes side by side take the longest slot.
func TestETARunRemaining(t *testing.T) {
	cells := testCells(t)[:4] // four cells of 10 s
	shapes := [][]scenario.Cell{cells[:2], cells[2:3], cells[3:]}
	cell := 10*time.Second + scenario.EstimateCellOverhead
	up, down := scenario.EstimateClusterUp, scenario.EstimateClusterDown

	one := &ETA{}
	one.Plan(1, shapes)
	if got, want := one.RunRemaining(), one.Remaining(cells, 3, 0, false); got != want {
		t.Errorf("one slot, nothing started: %s, Remaining says %s", got, want)
	}
	one.Left(0, cells[1:2])
	if got, want := one.RunRemaining(), one.Remaining(cells[1:], 2, 0, true); got != want {
		t.Errorf("one slot, shape 0 running: %s, Remaining says %s", got, want)
	}

	two := &ETA{}
	two.Plan(2, shapes)
	// Slot 1: shape 0 (2 cells), slot 2: shape 1, then shape 2 (1 cell each).
	if got, want := two.RunRemaining(), 2*(up+cell+down); got != want {
		t.Errorf("two slots, nothing started: %s, want %s", got, want)
	}
	two.Start(0)
	two.Start(1)
	if got, want := two.RunRemaining(), 2*(up+cell+down); got != want {
		t.Errorf("two slots, two clusters coming up: %s, want %s", got, want)
	}
	two.Left(0, cells[:2])
	two.Left(1, cells[2:3])
	two.Done(1)
	// Shape 0: 2 cells and its deletion; shape 2 on the free slot.
	if got, want := two.RunRemaining(), max(2*cell+down, up+cell+down); got != want {
		t.Errorf("two slots, shape 1 done: %s, want %s", got, want)
	}
	two.Done(0)
	two.Done(2)
	if got := two.RunRemaining(); got != 0 {
		t.Errorf("all done: %s", got)
	}
}
