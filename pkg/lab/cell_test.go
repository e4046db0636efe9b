package lab

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
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
