package collect

import (
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
// and keeps reading for StopGrace. It returns what each pod left and the
// problems met.
func Probes(ctx context.Context, cs kubernetes.Interface, run results.RunDir, cell scenario.Cell, namespace string, pods []*corev1.Pod) ([]*ProbeLog, []string) {
	f := follower{cs: cs, run: run}
	base, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStreams()
	streams, cancel := context.WithTimeout(base, StartTimeout+time.Duration(cell.Load.Duration)+LookupGrace)
	defer cancel()
	finished := make(chan struct{})
	defer close(finished)
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

	logs := make([]*ProbeLog, len(pods))
	errs := make([]string, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i], errs[i] = f.followPod(ctx, streams, cell.ID, namespace, p.Name)
		}()
	}
	wg.Wait()
	var problems []string
	for _, e := range errs {
		if e != "" {
			problems = append(problems, e)
		}
	}
	return logs, problems
}

// followPod waits for one probe to start, streams its log and checks how it
// ended; it returns what was collected and a problem ("" if none). A stream
// cut short (an API server hiccup) is read again, whole, from the kubelet
// once the container has exited.
// follower reads probe pods' logs into a run's raw files.
type follower struct {
	cs  kubernetes.Interface
	run results.RunDir
}

func (cr follower) followPod(ctx, streams context.Context, cellID, namespace, pod string) (*ProbeLog, string) {
	empty := &ProbeLog{Probe: results.Probe{File: cr.run.RawPath(cellID, pod)}}
	if err := workload.WaitContainerStarted(streams, cr.cs, namespace, pod, StartTimeout); err != nil {
		return empty, err.Error()
	}
	log, readErr := readProbeLog(streams, cr.cs, cr.run, cellID, namespace, pod, true)
	if ctx.Err() != nil {
		return log, "" // deleted on purpose; the summary says complete: false
	}
	end, err := workload.WaitPodFinished(streams, cr.cs, namespace, pod, time.Minute)
	switch {
	case errors.Is(err, workload.ErrPodGone):
		return log, fmt.Sprintf("pod %s was deleted while it ran", pod)
	case err != nil:
		return log, err.Error()
	}
	if readErr != nil || !log.balanced() {
		if whole, err := readProbeLog(streams, cr.cs, cr.run, cellID, namespace, pod, false); err == nil && whole.balanced() {
			log, readErr = whole, nil
		}
	}
	switch {
	case readErr != nil:
		return log, readErr.Error()
	case end != "":
		return log, fmt.Sprintf("pod %s: %s", pod, end)
	}
	return log, ""
}
