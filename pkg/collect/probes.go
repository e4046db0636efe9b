package collect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

const (
	// StartTimeout bounds the wait for a probe container to start.
	StartTimeout = 2 * time.Minute
	// LookupGrace is how long after its duration a probe may still finish
	// the lookups in flight (a few 5 s timeouts in a row).
	LookupGrace = 90 * time.Second
	// StopGrace is how long probes get, after Ctrl-C deleted their pods, to
	// write their summary before the streams are cut.
	StopGrace = 20 * time.Second
)

// Probes follows every probe pod's log into the run's raw files until the
// probes finish. On Ctrl-C it deletes the pods, so the probes get SIGTERM,
// finish the lookups in flight and write their summary (complete: false),
// and keeps reading for StopGrace. It returns what each pod left as soon as
// every log is read to its summary (no lookup is in flight any more: the
// caller reads the counters then), and ended, which waits for the pods to
// end and returns the problems met; the caller must call it.
func Probes(ctx context.Context, cs kubernetes.Interface, run results.RunDir, cell scenario.Cell, namespace string, pods []*corev1.Pod) (logs []*ProbeLog, ended func() []string) {
	f := follower{cs: cs, run: run}
	base, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	streams, cancel := context.WithTimeout(base, StartTimeout+time.Duration(cell.Load.Duration)+LookupGrace)
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			grace := int64(5)
			_ = cs.CoreV1().Pods(namespace).DeleteCollection(base, metav1.DeleteOptions{GracePeriodSeconds: &grace},
				metav1.ListOptions{LabelSelector: workload.LabelApp + "=" + workload.AppProbe})
			select {
			case <-time.After(StopGrace):
				cancelStreams()
			case <-finished:
			}
		case <-finished:
		}
	}()

	logs = make([]*ProbeLog, len(pods))
	ends := make([]func() string, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i], ends[i] = f.followPod(ctx, streams, cell.ID, namespace, p.Name)
		}()
	}
	wg.Wait()
	return logs, sync.OnceValue(func() []string {
		defer cancelStreams()
		defer cancel()
		defer close(finished)
		var problems []string
		for _, end := range ends {
			if e := end(); e != "" {
				problems = append(problems, e)
			}
		}
		return problems
	})
}

// follower reads probe pods' logs into a run's raw files.
type follower struct {
	cs  kubernetes.Interface
	run results.RunDir
}

// followPod waits for one probe to start and streams its log; it returns
// what was collected and end, which says how the pod ended ("" if well). A
// log read whole (its summary equals its samples) returns at once, the end
// of a probe that stopped early checked in the background; a stream cut
// short (an API server hiccup) is read again, whole, from the kubelet once
// the container has exited.
func (cr follower) followPod(ctx, streams context.Context, cellID, namespace, pod string) (*ProbeLog, func() string) {
	now := func(problem string) func() string { return func() string { return problem } }
	empty := &ProbeLog{Probe: results.Probe{File: cr.run.RawPath(cellID, pod)}}
	if err := workload.WaitContainerStarted(streams, cr.cs, namespace, pod, StartTimeout); err != nil {
		return empty, now(err.Error())
	}
	log, readErr := readProbeLog(streams, cr.cs, cr.run, cellID, namespace, pod, true)
	if ctx.Err() != nil {
		return log, now("") // deleted on purpose; the summary says complete: false
	}
	if readErr == nil && log.balanced() && log.Probe.Summary.Complete {
		// The probe ran its course and wrote every line: its exit code can
		// only be 0 (it exits 1 only when writing fails), so the kubelet's
		// report of it, a second or two later, is not waited for.
		return log, now("")
	}
	if readErr == nil && log.balanced() {
		problem := make(chan string, 1)
		go func() {
			how, why := cr.podEnd(streams, namespace, pod)
			problem <- cmp.Or(why, how)
		}()
		return log, sync.OnceValue(func() string { return <-problem })
	}
	how, why := cr.podEnd(streams, namespace, pod)
	if why != "" {
		return log, now(why)
	}
	if whole, err := readProbeLog(streams, cr.cs, cr.run, cellID, namespace, pod, false); err == nil && whole.balanced() {
		log, readErr = whole, nil
	}
	if readErr != nil {
		return log, now(readErr.Error())
	}
	return log, now(how)
}

// podEnd waits for a probe pod to end: end says how its probe exited ("" for
// 0), problem why it could not be known (the pod gone or still running).
func (cr follower) podEnd(ctx context.Context, namespace, pod string) (end, problem string) {
	how, err := workload.WaitPodFinished(ctx, cr.cs, namespace, pod, time.Minute)
	switch {
	case errors.Is(err, workload.ErrPodGone):
		return "", fmt.Sprintf("pod %s was deleted while it ran", pod)
	case err != nil:
		return "", err.Error()
	case how != "":
		return fmt.Sprintf("pod %s: %s", pod, how), ""
	}
	return "", ""
}
