//go:build e2e

package lab

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/compare"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// The scenario's two cells: under the race emulator, and on the bare kernel.
const (
	emuCell  = "default_glibc_none_emu-5.0-5.5"
	bareCell = "default_glibc_none_bare"
)

// TestE2ECellsSideBySide runs a cell under the race emulator and one on the
// bare kernel, first one at a time on a cluster of 2 workers, then side by
// side (--cells-at-once 2) on a cluster of 4 workers kept for the cells: the
// cells overlap on disjoint workers, the emulator of one lane touches
// nothing of the other, and the emulated cell's 5 s share does not change
// significantly when a neighbour runs beside it (Fisher's exact test, as
// labrun compare does it).
func TestE2ECellsSideBySide(t *testing.T) {
	var alone, side *e2ekit.Run
	f := features.New("cells side by side on disjoint workers").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			alone = e2ekit.RunScenario(ctx, t, "testdata/side-by-side.yaml", prefix+"-alone")
			side = e2ekit.RunScenario(ctx, t, "testdata/side-by-side.yaml", prefix+"-side",
				func(o *lab.RunOptions) { o.CellsAtOnce = 2 })
			return ctx
		}).
		Assess("the cells overlapped, each on two workers of its own", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			run := side.Result.Run
			var st [2]results.Status
			var nodes [2][]string
			for i, id := range []string{emuCell, bareCell} {
				s, ok, err := run.ReadStatus(id)
				if err != nil || !ok || s.State != results.Complete {
					t.Fatalf("%s: status %+v, ok %v, err %v: want complete", id, s, ok, err)
				}
				st[i] = s
				c, ok, err := run.ReadCounters(id)
				if err != nil || !ok {
					t.Fatalf("%s: counters: ok %v, err %v", id, ok, err)
				}
				nodes[i] = slices.Sorted(maps.Keys(c.Nodes))
			}
			if !st[0].Started.Before(st[1].Finished) || !st[1].Started.Before(st[0].Finished) {
				t.Errorf("the cells did not overlap: %s %s–%s, %s %s–%s", emuCell, st[0].Started, st[0].Finished, bareCell, st[1].Started, st[1].Finished)
			}
			for i, ns := range nodes {
				if len(ns) != 2 || slices.ContainsFunc(ns, func(n string) bool { return !strings.Contains(n, "-worker") }) {
					t.Errorf("cell %d read the counters of %v: want two workers", i, ns)
				}
			}
			if slices.ContainsFunc(nodes[0], func(n string) bool { return slices.Contains(nodes[1], n) }) {
				t.Errorf("the cells share nodes: %v and %v", nodes[0], nodes[1])
			}
			t.Logf("%s on %v, %s on %v; %s–%s and %s–%s", emuCell, nodes[0], bareCell, nodes[1],
				st[0].Started.Format("15:04:05.0"), st[0].Finished.Format("15:04:05.0"), st[1].Started.Format("15:04:05.0"), st[1].Finished.Format("15:04:05.0"))
			return ctx
		}).
		Assess("the cluster's servers run on the control plane, its workers are kept for the cells", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := side.Cluster(t, "default").Client
			pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			servers := 0
			for _, p := range pods.Items {
				if p.Labels["k8s-app"] == "kube-dns" || p.Labels["app"] == "labdns" || p.Labels["app"] == "labgrpc" {
					servers++
					if !strings.HasSuffix(p.Spec.NodeName, "-control-plane") {
						t.Errorf("server pod %s on %s: want the control plane", p.Name, p.Spec.NodeName)
					}
				}
			}
			if servers < 4 {
				t.Errorf("%d server pods (CoreDNS × 2, labdns, labgrpc) found, want 4", servers)
			}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			workers := 0
			for _, n := range nodes.Items {
				if !strings.Contains(n.Name, "-worker") {
					continue
				}
				workers++
				if !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool {
					return tn.Key == cluster.CellTaint && tn.Effect == corev1.TaintEffectNoSchedule
				}) {
					t.Errorf("worker %s: taints %v, want %s:NoSchedule", n.Name, n.Spec.Taints, cluster.CellTaint)
				}
			}
			if workers != 4 {
				t.Errorf("%d workers, want 4 (2 cells × 2)", workers)
			}
			return ctx
		}).
		Assess("the emulator of one lane touches nothing of the other", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, r := range []*e2ekit.Run{alone, side} {
				emu, bare := cellOf(t, r, emuCell), cellOf(t, r, bareCell)
				if emu.Counters.Emulator["dropped"] == 0 || emu.Stats.ClusteredShare < 0.1 {
					t.Errorf("%s: %s dropped %d, %.1f%% at 5 s multiples: the emulator did not work", r.Result.Run.Name(), emuCell,
						emu.Counters.Emulator["dropped"], 100*emu.Stats.ClusteredShare)
				}
				if len(bare.Counters.Emulator) != 0 || bare.Stats.AtLeast1s != 0 || bare.Stats.Count < 1000 {
					t.Errorf("%s: %s: emulator %v, %d of %d lookups ≥ 1 s: want no emulator, no slow lookup, ≥ 1000 lookups",
						r.Result.Run.Name(), bareCell, bare.Counters.Emulator, bare.Stats.AtLeast1s, bare.Stats.Count)
				}
			}
			return ctx
		}).
		Assess("alone or beside another, the emulated cell's 5 s share is the same", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cmp, err := compare.Runs(alone.Result.Run, side.Result.Run, compare.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			seen := false
			for _, row := range cmp.Rows {
				t.Logf("%s %s: alone %+v, side by side %+v, change %v, p %.3g (adjusted %.3g), significant %v",
					row.Cell, row.Metric, row.A, row.B, row.Change, row.P, row.AdjustedP, row.Significant)
				if row.Metric == compare.Share5s && row.Cell == emuCell {
					seen = true
					if row.Significant {
						t.Errorf("%s: the 5 s share changed significantly beside another cell: %+v → %+v (adjusted p %.3g)", emuCell, row.A, row.B, row.AdjustedP)
					}
				}
			}
			if !seen {
				t.Errorf("no 5 s share row for %s in the comparison", emuCell)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// cellOf is a cell of a run's summary, measured; the test fails at once
// without it.
func cellOf(t *testing.T, r *e2ekit.Run, id string) *analyze.Cell {
	t.Helper()
	for _, c := range r.Summary.Cells {
		if c.ID == id {
			if c.Stats == nil || c.Counters == nil {
				t.Fatalf("%s: %s has no stats or counters", r.Result.Run.Name(), id)
			}
			return c
		}
	}
	t.Fatalf("%s: no cell %s", r.Result.Run.Name(), id)
	return nil
}
