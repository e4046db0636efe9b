package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/scenario"
)

// One cluster, plain and with four cluster-level mitigations (three
// undoable, nodelocaldns not): five shapes of one cell.
const familyYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: family}
workload:
  resolvers: [glibc]
  mitigations: [none, nodelocaldns, autopath, random-fully, arp-gc]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`

var familyCells = []string{"default_glibc_none", "default+autopath_glibc_autopath", "default+random-fully_glibc_random-fully",
	"default+arp-gc_glibc_arp-gc", "default+nodelocaldns_glibc_nodelocaldns"}

// reuseRun is a run of familyYAML on fake clusters whose
// mitigations are set up and undone by a fake that logs in ev, and whose
// state is what state says.
type reuseRun struct {
	ev    *events
	o     RunOptions
	mu    sync.Mutex
	state string // what readState reads
	// dirty, when set, is what readState reads after the undo of that
	// mitigation: the reset leaves something behind.
	dirty string
	// failing names a mitigation whose set-up fails; unreadable makes
	// readState fail.
	failing    string
	unreadable bool
}

func newReuseRun(t *testing.T, parallel int) *reuseRun {
	t.Helper()
	ev := &events{}
	p := &fakeProvider{ev: ev, clusters: map[string]*cluster.Cluster{}}
	r := &reuseRun{ev: ev, state: "plain"}
	up := bringUpWith(p)
	r.o = fakeRunOptions(p, t.TempDir(), scenarioFile(t, familyYAML))
	r.o.Parallel, r.o.machine = parallel, bigMachine
	r.o.bringUp = func(ctx context.Context, o UpOptions) (*Testbed, error) {
		ev.add(fmt.Sprintf("up %s with %v", o.Name, o.ClusterMitigations))
		r.mu.Lock()
		r.state = "plain" // a new cluster
		r.mu.Unlock()
		return up(ctx, o)
	}
	r.o.setUpUndoable = func(_ context.Context, env addons.Env, m string) (addons.Undo, error) {
		if m == r.failing {
			ev.add("set up " + m + " fails")
			return nil, errors.New("scripted set-up failure of " + m)
		}
		ev.add("set up " + m + " on " + env.Cluster.Name)
		r.mu.Lock()
		r.state = "with " + m
		r.mu.Unlock()
		return func(context.Context) error {
			ev.add("undo " + m)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.state = "plain"
			if m == r.dirty {
				r.state = "left by " + m
			}
			return nil
		}, nil
	}
	r.o.readState = func(context.Context, *cluster.Cluster) (cluster.State, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.unreadable {
			return nil, errors.New("scripted: state unreadable")
		}
		return cluster.State{"rules": r.state}, nil
	}
	return r
}

// of are the events that start with one of prefixes, in order.
func (r *reuseRun) of(prefixes ...string) []string {
	var out []string
	for _, e := range r.ev.list() {
		for _, p := range prefixes {
			if strings.HasPrefix(e, p) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// TestRunServesAFamilyOnOneCluster: the plain shape and its undoable
// mitigations run on one cluster brought up plain, each mitigation set up
// after the cells before it and undone before the next (the last is not:
// the cluster goes); nodelocaldns gets a cluster of its own; env.json names
// the cluster each shape reused. Side by side, or kept (--retain), each
// shape has its own.
func TestRunServesAFamilyOnOneCluster(t *testing.T) {
	r := newReuseRun(t, 1)
	res, err := Run(context.Background(), r.o)
	// The fake probes leave no summary: every cell is incomplete.
	if !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("err = %v, want ErrCellsIncomplete", err)
	}
	checkStatuses(t, res.Run, familyCells)
	want := []string{
		"up labrun-default with []",
		"set up autopath on labrun-default", "undo autopath",
		"set up random-fully on labrun-default", "undo random-fully",
		"set up arp-gc on labrun-default",
		"provider delete labrun-default",
		"up labrun-default-nodelocaldns with [nodelocaldns]",
		"provider delete labrun-default-nodelocaldns",
	}
	if got := r.of("up ", "set up ", "undo ", "provider delete"); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	// Each shape's cells ran between its set-up and its undo.
	all := r.ev.list()
	for _, m := range []string{"autopath", "random-fully"} {
		set, undo := r.ev.index("set up "+m), r.ev.index("undo "+m)
		if set < 0 || undo < set || !slices.ContainsFunc(all[set:undo], func(e string) bool { return strings.HasPrefix(e, "api create pods") }) {
			t.Errorf("%s: set up at %d, undone at %d, with no probe pod made between", m, set, undo)
		}
	}
	// The fake clusters' facts cannot be read (no images): each shape's
	// attempt is recorded under its own cluster's name.
	env, _, err := res.Run.ReadEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"labrun-default", "labrun-default-autopath", "labrun-default-arp-gc", "labrun-default-nodelocaldns"} {
		if _, ok := env.Extra["error_"+name]; !ok {
			t.Errorf("env.json has nothing of %s: %v", name, slices.Sorted(maps.Keys(env.Extra)))
		}
	}
	for _, name := range []string{"labrun-default-autopath", "labrun-default-random-fully"} {
		if got := env.Extra[name+".reset"]; !strings.HasSuffix(got, ": the plain cluster again") {
			t.Errorf("env.json: %s.reset = %q", name, got)
		}
	}

	for _, tc := range []struct {
		name     string
		parallel int
		retain   bool
	}{{"--parallel 2", 2, false}, {"--retain", 1, true}} {
		own := newReuseRun(t, tc.parallel)
		own.o.Retain = tc.retain
		if _, err := Run(context.Background(), own.o); !errors.Is(err, ErrCellsIncomplete) {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if got := own.of("set up ", "undo "); len(got) > 0 {
			t.Errorf("%s: %v, want no mitigation set up on a cluster of another shape", tc.name, got)
		}
		if got := len(own.of("up ")); got != 5 {
			t.Errorf("%s: %d clusters, want one for each of the 5 shapes", tc.name, got)
		}
	}
}

// TestRunResetThatLeavesSomethingGetsAFreshCluster: when the state after an
// undo differs from the plain cluster's, the cluster goes and the shapes
// left get a fresh one (brought up as their own); env.json says why.
func TestRunResetThatLeavesSomethingGetsAFreshCluster(t *testing.T) {
	r := newReuseRun(t, 1)
	r.dirty = "autopath"
	res, err := Run(context.Background(), r.o)
	if !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("err = %v, want ErrCellsIncomplete", err)
	}
	want := []string{
		"up labrun-default with []",
		"set up autopath on labrun-default", "undo autopath",
		"provider delete labrun-default",
		"up labrun-default-random-fully with []",
		"set up random-fully on labrun-default-random-fully", "undo random-fully",
		"set up arp-gc on labrun-default-random-fully",
		"provider delete labrun-default-random-fully",
		"up labrun-default-nodelocaldns with [nodelocaldns]",
		"provider delete labrun-default-nodelocaldns",
	}
	if got := r.of("up ", "set up ", "undo ", "provider delete"); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	env, _, err := res.Run.ReadEnv()
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Extra["labrun-default-autopath.resetFailed"]; !strings.Contains(got, `rules: 1 line(s) new, "left by autopath"; 1 line(s) gone, "plain"`) {
		t.Errorf("env.json: labrun-default-autopath.resetFailed = %q", got)
	}
	checkStatuses(t, res.Run, familyCells)
	for _, id := range familyCells[2:4] {
		if st, _, _ := res.Run.ReadStatus(id); strings.HasPrefix(st.Reason, "not reached") {
			t.Errorf("%s: %s, want run on the fresh cluster", id, st.Reason)
		}
	}
}

// TestRunFamilyGoesOnAfterAFailure: a shape whose mitigation fails to set up
// fails alone (its cells not reached, the run failed): the shapes after it
// run on a fresh cluster. A plain cluster whose state cannot be read gives
// each shape a cluster of its own.
func TestRunFamilyGoesOnAfterAFailure(t *testing.T) {
	r := newReuseRun(t, 1)
	r.failing = "autopath"
	res, err := Run(context.Background(), r.o)
	if err == nil || !strings.Contains(err.Error(), "scripted set-up failure of autopath") {
		t.Fatalf("err = %v, want the set-up failure", err)
	}
	want := []string{
		"up labrun-default with []",
		"set up autopath fails",
		"provider delete labrun-default",
		"up labrun-default-random-fully with []",
		"set up random-fully on labrun-default-random-fully", "undo random-fully",
		"set up arp-gc on labrun-default-random-fully",
		"provider delete labrun-default-random-fully",
		"up labrun-default-nodelocaldns with [nodelocaldns]",
		"provider delete labrun-default-nodelocaldns",
	}
	if got := r.of("up ", "set up ", "undo ", "provider delete"); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	for _, id := range familyCells {
		st, _, _ := res.Run.ReadStatus(id)
		if reached := !strings.HasPrefix(st.Reason, "not reached"); reached != (id != familyCells[1]) {
			t.Errorf("%s: %s %s", id, st.State, st.Reason)
		}
	}

	r = newReuseRun(t, 1)
	r.unreadable = true
	if _, err := Run(context.Background(), r.o); !errors.Is(err, ErrCellsIncomplete) {
		t.Fatalf("state unreadable: err = %v, want ErrCellsIncomplete", err)
	}
	want = []string{
		"up labrun-default with []", "provider delete labrun-default",
		"up labrun-default with []", "provider delete labrun-default",
		"up labrun-default-autopath with [autopath]", "provider delete labrun-default-autopath",
		"up labrun-default-random-fully with [random-fully]", "provider delete labrun-default-random-fully",
		"up labrun-default-arp-gc with [arp-gc]", "provider delete labrun-default-arp-gc",
		"up labrun-default-nodelocaldns with [nodelocaldns]", "provider delete labrun-default-nodelocaldns",
	}
	if got := r.of("up ", "set up ", "undo ", "provider delete"); !slices.Equal(got, want) {
		t.Errorf("state unreadable: events:\n got %q\nwant %q", got, want)
	}
}

// TestServe: a later shape of a family is recorded under its own cluster
// name, with the cluster it reuses and its mitigations' facts; the cluster
// itself is untouched (its name, its facts). A mitigation that fails to
// set up undoes those set up before it.
func TestServe(t *testing.T) {
	ev := &events{}
	c := &cluster.Cluster{Name: "labrun-default"}
	l := &Testbed{Cluster: c, Facts: map[string]string{"dns": "coredns"}}
	host := scenario.Shape{ID: "default"}
	guest := scenario.Shape{ID: "default+arp-gc+autopath", ClusterMitigations: []string{"arp-gc", "autopath"}}
	fail := ""
	o := RunOptions{ClusterPrefix: "labrun", Progress: io.Discard,
		setUpUndoable: func(_ context.Context, env addons.Env, m string) (addons.Undo, error) {
			if m == fail {
				return nil, errors.New("scripted failure")
			}
			ev.add("set up " + m + " on " + env.Cluster.Name)
			env.Note("seen."+m, "yes")
			return func(context.Context) error { ev.add("undo " + m); return nil }, nil
		}}
	g, undo, err := serve(context.Background(), o, l, guest, host)
	if err != nil {
		t.Fatal(err)
	}
	if g.Cluster.Name != "labrun-default-arp-gc-autopath" || c.Name != "labrun-default" || g.Cluster.Client != c.Client {
		t.Errorf("recorded as %s (cluster %s)", g.Cluster.Name, c.Name)
	}
	if g.Facts["reusedFrom"] != "labrun-default" || g.Facts["seen.autopath"] != "yes" || g.Facts["dns"] != "coredns" ||
		!strings.Contains(g.Facts["mitigation.arp-gc"], "on labrun-default, the cluster of shape default") {
		t.Errorf("recorded facts %v", g.Facts)
	}
	if len(l.Facts) != 1 || !slices.Equal(g.Mitigations, guest.ClusterMitigations) {
		t.Errorf("the cluster's own facts %v; recorded mitigations %v", l.Facts, g.Mitigations)
	}
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.list(), []string{"set up arp-gc on labrun-default", "set up autopath on labrun-default", "undo autopath", "undo arp-gc"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if g, _, _ := serve(context.Background(), o, l, host, host); g != l {
		t.Error("the family's first shape is not recorded as the cluster itself")
	}

	ev.all, fail = nil, "autopath"
	if _, _, err := serve(context.Background(), o, l, guest, host); err == nil || !strings.Contains(err.Error(), "scripted failure") {
		t.Errorf("err = %v", err)
	}
	if got, want := ev.list(), []string{"set up arp-gc on labrun-default", "undo arp-gc"}; !slices.Equal(got, want) {
		t.Errorf("after a failed set-up: %q, want %q", got, want)
	}
}

func TestAfter(t *testing.T) {
	shape := func(cells ...string) scenario.PlanShape {
		var ps scenario.PlanShape
		for _, id := range cells {
			ps.Cells = append(ps.Cells, scenario.Cell{ID: id})
		}
		return ps
	}
	// Two families: shapes 0, 2, 1 on one cluster (in that order), 3 alone.
	sh := &runShared{
		shapes:   []scenario.PlanShape{shape("a"), shape("b1", "b2"), shape("c"), shape("d")},
		families: [][]int{{0, 2, 1}, {3}},
	}
	if got := switches(sh.families); got != 2 {
		t.Errorf("switches = %d, want 2", got)
	}
	for _, tc := range []struct {
		si                int
		cells             string
		clusters, switchN int
	}{
		{0, "c b1 b2 d", 1, 2},
		{2, "b1 b2 d", 1, 1},
		{1, "d", 1, 0},
		{3, "", 0, 0},
	} {
		cells, clusters, sw := sh.after(tc.si)
		var ids []string
		for _, c := range cells {
			ids = append(ids, c.ID)
		}
		if got := strings.Join(ids, " "); got != tc.cells || clusters != tc.clusters || sw != tc.switchN {
			t.Errorf("after(%d) = %q, %d clusters, %d switches; want %q, %d, %d", tc.si, got, clusters, sw, tc.cells, tc.clusters, tc.switchN)
		}
	}
}
