//go:build e2e

// Package e2ekit is what the e2e suites share: a test environment that brings
// a lab cluster up from the offline images in Setup and, in Finish, exports
// its logs and deletes it (even after a failure); RunScenario, which runs a
// scenario with its clusters kept and registers their removal before it makes
// anything; and small pod helpers.
package e2ekit

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
)

// Suite is an e2e-framework environment around one lab cluster.
type Suite struct {
	Env env.Environment
	Lab *lab.Testbed // set once Setup has brought the cluster up
}

// New returns a suite whose Setup brings cluster o.Name up (deleting a
// leftover of an interrupted earlier run first) and whose Finish exports the
// cluster's logs to $TMPDIR/<name>-logs and deletes it. Where Docker cannot
// run, Setup fails and says why: it never skips.
func New(o lab.UpOptions) *Suite {
	s := &Suite{Env: env.NewWithConfig(envconf.New())}
	o.Progress = os.Stderr
	s.Env.Setup(func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		upCtx, cancel := context.WithTimeout(ctx, 40*time.Minute)
		defer cancel()
		_ = kind.New(os.Stderr).Delete(upCtx, o.Name)
		start := time.Now()
		l, err := lab.Up(upCtx, o)
		if err != nil {
			return ctx, fmt.Errorf("bring the e2e cluster %s up: %w", o.Name, err)
		}
		fmt.Fprintf(os.Stderr, "e2e: cluster %s up (images + cluster + addons) in %s\n", o.Name, time.Since(start).Round(time.Second))
		s.Lab = l
		cfg.WithKubeconfigFile(l.Cluster.Kubeconfig)
		return ctx, nil
	})
	s.Env.Finish(func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		exportLogs(o.Name)
		start := time.Now()
		err := kind.New(os.Stderr).Delete(context.WithoutCancel(ctx), o.Name)
		fmt.Fprintf(os.Stderr, "e2e: cluster %s down in %s\n", o.Name, time.Since(start).Round(100*time.Millisecond))
		return ctx, err
	})
	return s
}

// Run runs the suite's tests: call it from TestMain.
func (s *Suite) Run(m *testing.M) { os.Exit(s.Env.Run(m)) }

// Clientset is a Kubernetes client for the suite's cluster.
func (s *Suite) Clientset() kubernetes.Interface { return s.Lab.Cluster.Client }

// exportLogs writes a cluster's logs to $TMPDIR/<name>-logs.
func exportLogs(name string) {
	dir := filepath.Join(os.TempDir(), name+"-logs")
	os.RemoveAll(dir)
	if err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).CollectLogs(name, dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: export logs of %s: %v\n", name, err)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: logs of %s exported to %s\n", name, dir)
	}
}

// Keep registers with t.Cleanup the removal of every lab cluster named
// prefix or prefix-… (lab.ClusterName(prefix, shape) names a run's), and a
// check that none is left. Call it before making anything: e2e-framework runs
// no Teardown step after a failed Setup step, but a test's cleanups always
// run. A failed test's clusters have their logs exported first. Deleting the
// last lab cluster restores the host sysctls the lab changed
// (cluster.RestoreHostSysctls): a check of that goes in a cleanup registered
// before Keep (cleanups run last in, first out).
func Keep(t *testing.T, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		p := kind.New(os.Stderr)
		names, err := p.List(ctx)
		if err != nil {
			t.Errorf("list clusters: %v", err)
			return
		}
		for _, n := range names {
			if !kept(n, prefix) {
				continue
			}
			if t.Failed() {
				exportLogs(n)
			}
			if err := p.Delete(ctx, n); err != nil {
				t.Errorf("delete %s: %v", n, err)
			}
		}
		if names, err = p.List(ctx); err != nil {
			t.Errorf("list clusters: %v", err)
			return
		}
		for _, n := range names {
			if kept(n, prefix) {
				t.Errorf("cluster %s still listed after delete", n)
			}
		}
	})
}

// kept says whether Keep(prefix) removes cluster name: prefix itself or
// prefix-…, not a cluster whose prefix merely starts the same
// (labrun-e2e-nl takes labrun-e2e-nl-default, not labrun-e2e-nlx-default).
func kept(name, prefix string) bool {
	return name == prefix || strings.HasPrefix(name, prefix+"-")
}

// Run is a scenario run whose clusters are kept for a test to look at.
type Run struct {
	Result  *lab.RunResult
	Summary report.Summary
	// Clusters are the run's clusters, by shape id.
	Clusters map[string]*cluster.Cluster
}

// Cluster is the cluster of a shape; the test fails at once without it.
func (r *Run) Cluster(t *testing.T, shape string) *cluster.Cluster {
	t.Helper()
	c, ok := r.Clusters[shape]
	if !ok {
		t.Fatalf("the run kept no cluster for shape %s (kept: %v)", shape, slices.Collect(maps.Keys(r.Clusters)))
	}
	return c
}

// RunScenario runs a scenario with its clusters named prefix-<shape> and
// kept (Keep removes them when the test ends, whatever happened), reads its
// summary.json and gets each shape's cluster. Any failure ends the test.
// Each opt may set more options of the run.
func RunScenario(ctx context.Context, t *testing.T, scenarioFile, prefix string, opts ...func(*lab.RunOptions)) *Run {
	t.Helper()
	Keep(t, prefix)
	start := time.Now()
	o := lab.RunOptions{
		Scenario: scenarioFile, ResultsDir: t.TempDir(),
		Retain: true, ClusterPrefix: prefix, Progress: os.Stderr,
	}
	for _, opt := range opts {
		opt(&o)
	}
	res, err := lab.Run(ctx, o)
	if err != nil {
		t.Fatalf("lab.Run %s: %v", scenarioFile, err)
	}
	t.Logf("lab.Run %s (images, clusters, cells, report) took %s", scenarioFile, time.Since(start).Round(time.Second))
	r := &Run{Result: res, Clusters: map[string]*cluster.Cluster{}}
	if err := results.ReadJSON(res.Run.SummaryPath(), &r.Summary); err != nil {
		t.Fatal(err)
	}
	p := kind.New(os.Stderr)
	for _, c := range r.Summary.Cells {
		if _, ok := r.Clusters[c.Shape]; ok || c.State == results.NotRun {
			continue
		}
		if r.Clusters[c.Shape], err = p.Get(ctx, lab.ClusterName(prefix, c.Shape)); err != nil {
			t.Fatalf("the run did not keep the cluster of shape %s: %v", c.Shape, err)
		}
	}
	return r
}

// WaitPodDone waits until a pod has succeeded or failed and returns its phase.
func WaitPodDone(ctx context.Context, cs kubernetes.Interface, ns, name string) (corev1.PodPhase, error) {
	var last corev1.PodPhase
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p.Status.Phase
		return last == corev1.PodSucceeded || last == corev1.PodFailed, nil
	})
	if err != nil {
		return last, fmt.Errorf("pod %s/%s not done (phase %q): %w", ns, name, last, err)
	}
	return last, nil
}

// PodLogs returns one container's logs.
func PodLogs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, pod, container string) string {
	t.Helper()
	b, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s/%s/%s: %v", ns, pod, container, err)
	}
	return string(b)
}

// RunPod creates pod, waits until it is done and returns its name and phase;
// the pod is deleted when the test ends.
func RunPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) (string, corev1.PodPhase) {
	t.Helper()
	created, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Pods(pod.Namespace).Delete(context.WithoutCancel(ctx), created.Name, metav1.DeleteOptions{})
	})
	phase, err := WaitPodDone(ctx, cs, pod.Namespace, created.Name)
	if err != nil {
		t.Fatal(err)
	}
	return created.Name, phase
}
