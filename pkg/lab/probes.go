package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// collect follows every probe pod's log until the probes finish. On Ctrl-C
// it deletes the pods, so the probes get SIGTERM, finish the lookups in
// flight and write their summary (complete: false), and keeps reading for
// stopGrace.
func (cr *clusterRun) collect(ctx context.Context, cell scenario.Cell, namespace string, pods []*corev1.Pod) ([]*probeLog, []string) {
	base, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStreams()
	streams, cancel := context.WithTimeout(base, startTimeout+time.Duration(cell.Load.Duration)+lookupGrace)
	defer cancel()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			grace := int64(5)
			_ = cr.cs.CoreV1().Pods(namespace).DeleteCollection(base, metav1.DeleteOptions{GracePeriodSeconds: &grace},
				metav1.ListOptions{LabelSelector: workload.LabelApp + "=" + workload.AppProbe})
			select {
			case <-time.After(stopGrace):
				cancelStreams()
			case <-finished:
			}
		case <-finished:
		}
	}()

	logs := make([]*probeLog, len(pods))
	errs := make([]string, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i], errs[i] = cr.followPod(ctx, streams, cell.ID, namespace, p.Name)
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
func (cr *clusterRun) followPod(ctx, streams context.Context, cellID, namespace, pod string) (*probeLog, string) {
	empty := &probeLog{Probe: results.Probe{File: cr.run.RawPath(cellID, pod)}}
	if err := waitContainerStarted(streams, cr.cs, namespace, pod, startTimeout); err != nil {
		return empty, err.Error()
	}
	log, readErr := readProbeLog(streams, cr.cs, cr.run, cellID, namespace, pod, true)
	if ctx.Err() != nil {
		return log, "" // deleted on purpose; the summary says complete: false
	}
	end, err := waitPodFinished(streams, cr.cs, namespace, pod, time.Minute)
	switch {
	case errors.Is(err, errPodGone):
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
