//go:build e2e

package jvm

import (
	"context"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const prefix = "labrun-e2ejvm"

// workers is the number of Java workers of each cell: 2 worker nodes × 2
// pods × 2 in flight (testdata/jvm.yaml).
const workers = 8

func TestE2EJVM(t *testing.T) {
	var run *e2ekit.Run
	cells := map[string]*analyze.Cell{}
	f := features.New("the jvm back end under the race, JVM cache off and on").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			run = e2ekit.RunScenario(ctx, t, "testdata/jvm.yaml", prefix)
			for _, c := range run.Summary.Cells {
				cells[c.ID] = c
				if c.State != results.Complete || c.Stats == nil || c.Counters == nil {
					t.Fatalf("cell %s: %s (%s), want complete with stats and counters", c.ID, c.State, c.Reason)
				}
				t.Logf("cell %s (backend %s): %d lookups, %d ≥ 5 s (%.2f %%), emulator seen %d dropped %d, insert_failed %d",
					c.ID, c.Backend, c.Stats.Count, c.Stats.AtLeast5s, 100*c.Stats.ShareAtLeast5s,
					c.Counters.Emulator["seen"], c.Counters.Emulator[analyze.EmulatorDropped], c.Counters.Conntrack["insert_failed"])
			}
			if len(cells) != 4 {
				t.Fatalf("%d cells, want 4", len(cells))
			}
			return ctx
		}).
		Assess("without a mitigation and without the cache, lookups wait 5 s; at most once per Java worker", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := cells["default_jvm-nocache_none"]
			if c.Stats.AtLeast5s == 0 || c.Counters.Emulator[analyze.EmulatorDropped] == 0 {
				t.Errorf("%s: %d lookups ≥ 5 s, %d drops; want the race to show", c.ID, c.Stats.AtLeast5s, c.Counters.Emulator[analyze.EmulatorDropped])
			}
			// After its first timeout with one of two answers, glibc puts the
			// thread in single-request mode, and the JVM never re-reads
			// resolv.conf: each worker pays once.
			if c.Stats.AtLeast5s > workers {
				t.Errorf("%s: %d lookups ≥ 5 s, want at most one per Java worker (%d)", c.ID, c.Stats.AtLeast5s, workers)
			}
			return ctx
		}).
		Assess("single-request-reopen reaches the JVM through glibc: nothing dropped, no lookup at 5 s", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, id := range []string{"default_jvm-nocache_single-request-reopen", "default_jvm_single-request-reopen"} {
				c := cells[id]
				if c.Stats.AtLeast5s != 0 || c.Counters.Emulator[analyze.EmulatorDropped] != 0 {
					t.Errorf("%s: %d lookups ≥ 5 s, %d drops; want 0 and 0", id, c.Stats.AtLeast5s, c.Counters.Emulator[analyze.EmulatorDropped])
				}
			}
			return ctx
		}).
		Assess("the JVM's cache hides repeats: a tenth of the queries reach the DNS path", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			off, on := cells["default_jvm-nocache_none"], cells["default_jvm_none"]
			if on.Stats.AtLeast5s > workers {
				t.Errorf("%s: %d lookups ≥ 5 s, want at most one per Java worker (%d): the cache answers the rest", on.ID, on.Stats.AtLeast5s, workers)
			}
			if seenOn, seenOff := on.Counters.Emulator["seen"], off.Counters.Emulator["seen"]; seenOn == 0 || 10*seenOn > seenOff {
				t.Errorf("emulator saw %d packets with the cache, %d without: want some, and under a tenth", seenOn, seenOff)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
