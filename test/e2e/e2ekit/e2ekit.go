//go:build e2e

// Package e2ekit is what the e2e suites share: a test environment that brings
// a lab cluster up from the offline images in Setup and, in Finish, exports
// its logs and deletes it (even after a failure), and small pod helpers.
package e2ekit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"labrun.dev/labrun/pkg/lab"
)

// Suite is an e2e-framework environment around one lab cluster.
type Suite struct {
	Env env.Environment
	Lab *lab.Lab // set once Setup has brought the cluster up
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
		_ = lab.Down(upCtx, o.Name, os.Stderr)
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
		dir := filepath.Join(os.TempDir(), o.Name+"-logs")
		os.RemoveAll(dir)
		if err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).CollectLogs(o.Name, dir); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: export logs: %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: cluster logs exported to %s\n", dir)
		}
		start := time.Now()
		err := lab.Down(context.WithoutCancel(ctx), o.Name, os.Stderr)
		fmt.Fprintf(os.Stderr, "e2e: cluster %s down in %s\n", o.Name, time.Since(start).Round(100*time.Millisecond))
		return ctx, err
	})
	return s
}

// Run runs the suite's tests: call it from TestMain.
func (s *Suite) Run(m *testing.M) { os.Exit(s.Env.Run(m)) }

// Clientset is a Kubernetes client for the suite's cluster.
func Clientset(t *testing.T, cfg *envconf.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg.Client().RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
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
