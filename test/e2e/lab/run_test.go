//go:build e2e

package lab

import (
	"context"
	"os"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/workload"
)

// prefix names this test's cluster (labrun-e2elab-default): not the
// labrun-e2e cluster of the other e2e package, which may run at the same time.
const prefix = "labrun-e2elab"

type runKey struct{}

func TestE2ELabRunBaseline(t *testing.T) {
	f := features.New("labrun run on a short baseline").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// The cluster is kept so that the test can look for leftovers in
			// it; the test deletes it afterwards.
			res, err := lab.Run(ctx, lab.RunOptions{
				Scenario: "testdata/short-baseline.yaml", ResultsDir: t.TempDir(),
				Retain: true, ClusterPrefix: prefix, Progress: os.Stderr,
			})
			if err != nil {
				t.Fatalf("lab.Run: %v", err)
			}
			return context.WithValue(ctx, runKey{}, res)
		}).
		Assess("claims 1, 2, 3, 7 and 8 pass in summary.json", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res := ctx.Value(runKey{}).(*lab.RunResult)
			var s report.Summary
			if err := results.ReadJSON(res.Run.SummaryPath(), &s); err != nil {
				t.Fatal(err)
			}
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
			res := ctx.Value(runKey{}).(*lab.RunResult)
			cs := clientFor(t, lab.ClusterName(prefix, "default"))
			byRun := metav1.ListOptions{LabelSelector: workload.LabelRun + "=" + res.Run.Name()}
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
				if ds.Name == lab.AgentName {
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
		}).
		Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			name := lab.ClusterName(prefix, "default")
			if err := lab.Down(context.WithoutCancel(ctx), name, os.Stderr); err != nil {
				t.Errorf("delete %s: %v", name, err)
			}
			left, err := cluster.NewKind(os.Stderr).List()
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(left, name) {
				t.Errorf("cluster %s still listed after delete", name)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func clientFor(t *testing.T, clusterName string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.KubeconfigPath(clusterName))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
