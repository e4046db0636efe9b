package lab

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// TestTeardownAlongside: steps pushed alongside one another run at the same
// time (each here waits for the other to have started, which one at a time
// never would), a step pushed alone waits for the group before it and runs
// before the group pushed before it, a step that panics is a problem (not
// the end of the process), and problems keep the steps' order.
func TestTeardownAlongside(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	started := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	meet := func(me, other string) func(context.Context) error {
		return func(ctx context.Context) error {
			note(me)
			close(started[me])
			select {
			case <-started[other]:
				return errors.New(me + " failed")
			case <-time.After(5 * time.Second):
				return errors.New(me + " ran alone")
			}
		}
	}
	var td teardown
	td.push("first", func(context.Context) error { note("first"); return nil })
	td.pushAlongside("a", meet("a", "b"))
	td.pushAlongside("b", meet("b", "a"))
	td.push("middle", func(context.Context) error { note("middle"); return nil })
	td.awaitAlongside(func() []string { note("wait"); return []string{"a pod ended badly"} })
	td.pushAlongside("last", func(context.Context) error { note("last"); return nil })
	td.pushAlongside("panics", func(context.Context) error { panic("scripted") })

	problems := td.run(context.Background())
	want := []string{"teardown: panic: scripted", "a pod ended badly", "teardown b: b failed", "teardown a: a failed"}
	if !slices.Equal(problems, want) {
		t.Errorf("problems %q, want %q", problems, want)
	}
	if len(order) != 6 {
		t.Fatalf("ran %q, want 6 steps", order)
	}
	// last and wait together, then middle alone, then a and b together, then first.
	if got := slices.Sorted(slices.Values(order[:2])); !slices.Equal(got, []string{"last", "wait"}) {
		t.Errorf("first group %q", order[:2])
	}
	if order[2] != "middle" || order[5] != "first" {
		t.Errorf("order %q: want middle third and first last", order)
	}
	if td.steps != nil {
		t.Error("steps kept after run")
	}
}

// underEmulator is the chaos section of cells under the race emulator.
const underEmulator = "chaos:\n  raceEmulator: {profile: \"5.0-5.5\"}\n"

// fakeAgent is an agent whose spec is given; it records what is done to it.
type fakeAgent struct {
	spec string
	ev   *events
}

func (a *fakeAgent) Inject(context.Context) error { a.ev.add("inject " + a.spec); return nil }
func (a *fakeAgent) Revert(context.Context) error { a.ev.add("revert " + a.spec); return nil }
func (a *fakeAgent) Spec() string                 { return a.spec }

// TestLaneKeepsTheAgent: a lane's race emulator goes on from one cell to the
// next that needs the same agent; another agent, or none, replaces it only
// once it is gone; the lane's end removes the last; every agent's namespace
// is made before it and deleted after it.
func TestLaneKeepsTheAgent(t *testing.T) {
	ev := &events{}
	cr, _ := newFakeRun(t, ev, script{}, nil)
	cr.newAgent = func(_ *cluster.Cluster, cell scenario.Cell, _ string) (agent, error) {
		spec := "emulate"
		if cell.Mitigations.Has("delay-aaaa") {
			spec = "delay-aaaa"
		}
		return &fakeAgent{spec: spec, ev: ev}, nil
	}
	cells := glibcCells(t, "none, single-request-reopen, delay-aaaa", underEmulator)
	if len(cells) != 3 {
		t.Fatalf("%d cells", len(cells))
	}
	none, srr, delay := cells[0], cells[1], cells[2]
	bare := bareCell(t)
	ctx := context.Background()
	for _, step := range []struct {
		cell  scenario.Cell
		needs bool
		want  []string // agent events of this step
	}{
		{none, true, []string{"inject emulate"}},
		{srr, true, nil}, // the same agent goes on
		{delay, true, []string{"revert emulate", "inject delay-aaaa"}},
		{bare, false, []string{"revert delay-aaaa"}},
		{none, true, []string{"inject emulate"}},
	} {
		before := len(ev.list())
		if err := cr.agentFor(ctx, step.cell, step.needs, "unused"); err != nil {
			t.Fatalf("%s: %v", step.cell.ID, err)
		}
		var got []string
		for _, e := range ev.list()[before:] {
			if strings.HasPrefix(e, "inject ") || strings.HasPrefix(e, "revert ") {
				got = append(got, e)
			}
		}
		if !slices.Equal(got, step.want) {
			t.Errorf("%s: agent events %q, want %q", step.cell.ID, got, step.want)
		}
	}
	if err := cr.endLane(ctx); err != nil {
		t.Fatal(err)
	}
	all := ev.list()
	if all[len(all)-2] != "revert emulate" || cr.kept != nil {
		t.Errorf("the lane's end left the agent: %q", all[len(all)-3:])
	}
	// Three agents ran: three namespaces made, three deleted, each after its revert.
	if made, gone := countPrefix(all, "api create namespaces"), countPrefix(all, "api delete namespaces"); made != 3 || gone != 3 {
		t.Errorf("%d agent namespaces made, %d deleted, want 3 and 3: %q", made, gone, all)
	}
	for i, e := range all {
		if e == "api delete namespaces" && !strings.HasPrefix(all[i-1], "revert ") {
			t.Errorf("a namespace deleted before its agent was reverted: %q", all[:i+1])
		}
	}
}

// TestCellThatFailsDropsTheAgent: a cell that did not go well (here its
// counters cannot be read) does not hand its agent on: the teardown removes it.
func TestCellThatFailsDropsTheAgent(t *testing.T) {
	ev := &events{}
	cr, _ := newFakeRun(t, ev, script{fail: "counters"}, nil)
	cr.newAgent = func(_ *cluster.Cluster, _ scenario.Cell, _ string) (agent, error) {
		return &fakeAgent{spec: "emulate", ev: ev}, nil
	}
	cell := glibcCells(t, "none", underEmulator)[0]
	res := cr.runCell(context.Background(), cell)
	if res.Status.State != results.Incomplete || !strings.Contains(res.Status.Reason, "counters before") {
		t.Errorf("state %s, reason %q", res.Status.State, res.Status.Reason)
	}
	if cr.kept != nil || ev.index("revert emulate") < 0 {
		t.Errorf("the failed cell's agent was kept: %q", ev.list())
	}
	// Two namespaces made (the cell's, the agent's), two deleted.
	if made, gone := countPrefix(ev.list(), "api create namespaces"), countPrefix(ev.list(), "api delete namespaces"); made != 2 || gone != 2 {
		t.Errorf("%d namespaces made, %d deleted, want 2 and 2: %q", made, gone, ev.list())
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
