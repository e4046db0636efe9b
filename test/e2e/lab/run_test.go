//go:build e2e

package lab

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/chaos"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/workload"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// prefix names this test's cluster (labrun-e2elab-default): not the
// labrun-e2e cluster of the other e2e package, which may run at the same time.
const prefix = "labrun-e2elab"

func TestE2ELabRunBaseline(t *testing.T) {
	var run *e2ekit.Run
	var egress *e2ekit.Egress
	f := features.New("labrun run on a short baseline").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// Everything on the host's outward interface, from before the
			// cluster is made to the report.
			egress = e2ekit.WatchEgress(t)
			// The cluster is kept so that the test can look for leftovers in
			// it; it is deleted when the test ends, whatever happened.
			run = e2ekit.RunScenario(ctx, t, "testdata/short-baseline.yaml", prefix)
			return ctx
		}).
		Assess("hermetic: no packet of the lab left the machine", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			egress.Check(t)
			if !strings.Contains(run.Summary.Env.Egress, "rejected") {
				t.Errorf("env.json egress: %q, want the guard that rejects forwarding off the kind network", run.Summary.Env.Egress)
			}
			return ctx
		}).
		Assess("claims 1, 2, 3, 7 and 8 pass in summary.json", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res, s := run.Result, run.Summary
			for _, c := range s.Claims {
				want := analyze.NotRun
				if slices.Contains([]int{1, 2, 3, 7, 8}, c.N) { // 8: the DNS captures
					want = analyze.Pass
				}
				if c.Verdict != want {
					t.Errorf("claim %d: %s, want %s: %s", c.N, c.Verdict, want, c.Evidence)
				} else {
					t.Logf("claim %d: %s: %s", c.N, c.Verdict, c.Evidence)
				}
			}
			if len(s.Cells) != 4 || s.Totals.Cells[results.Complete] != 4 {
				t.Errorf("cells by state %v, want 4 complete", s.Totals.Cells)
			}
			for _, c := range s.Cells {
				if c.Stats == nil || c.Counters == nil || c.Counters.Emulator == nil {
					t.Errorf("cell %s: stats %v, counters %v: want both, with the emulator's", c.ID, c.Stats, c.Counters)
				}
			}
			if !s.Env.Emulator || s.Env.Kubernetes == "" || s.Env.Kind == "" || s.Env.Kernel == "" || len(s.Env.Images) < 5 {
				t.Errorf("env.json lacks facts: %+v", s.Env)
			}
			if _, err := os.Stat(res.Index); err != nil {
				t.Errorf("index.html: %v", err)
			}
			return ctx
		}).
		Assess("no namespace, DaemonSet or probe pod of the run is left in the cluster", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := run.Cluster(t, "default").Client
			byRun := metav1.ListOptions{LabelSelector: workload.LabelRun + "=" + run.Result.Run.Name()}
			nss, err := cs.CoreV1().Namespaces().List(ctx, byRun)
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range nss.Items {
				t.Errorf("namespace %s left (phase %s)", ns.Name, ns.Status.Phase)
			}
			dss, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ds := range dss.Items {
				if ds.Name == chaos.AgentName {
					t.Errorf("race emulator DaemonSet %s/%s left", ds.Namespace, ds.Name)
				}
			}
			pods, err := cs.CoreV1().Pods("").List(ctx, byRun)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				t.Errorf("pod %s/%s left", p.Namespace, p.Name)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
