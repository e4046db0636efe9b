package diagnose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/workload"
)

// MeasureOptions are a measurement's bounds and images.
type MeasureOptions struct {
	ID            string
	Load          Load
	Images        Images
	Counters      bool // run the hostNetwork counter pods (--allow-privileged)
	ClusterDomain string
	Progress      io.Writer
	// StartTimeout bounds the wait for a pod's container to start.
	StartTimeout time.Duration
	// Settle is how long the counter pods run before and after the
	// probes, so a snapshot exists on each side of the window.
	Settle time.Duration
	// Logs reads a container's log; nil reads it from the API server
	// (tests give recorded logs: client-go's fake serves none).
	Logs func(ctx context.Context, namespace, pod, container string) ([]byte, error)
}

// Measurement is what the probe pods and counter pods measured.
type Measurement struct {
	Namespace string         `json:"namespace"`
	Load      Load           `json:"load"`
	Bursts    []Burst        `json:"bursts"`
	Counters  []NodeCounters `json:"counters,omitempty"`
	// CountersNote says why counters were not read, when they were not.
	CountersNote string `json:"countersNote,omitempty"`
	// Refused is set when admission refused a probe pod's dry run: nothing
	// but the empty namespace was made, and it is deleted.
	Refused string `json:"refused,omitempty"`
	// Cleanup is the final check that nothing is left.
	Cleanup string `json:"cleanup"`
}

// Measure runs the probes (and, with o.Counters, the counter pods) in a
// namespace of their own, reads their logs and deletes the namespace on
// every way out, Ctrl-C included; the final check is in m.Cleanup. Every
// pod is dry-run in the namespace before any is created, so admission
// (PodSecurity, policy engines) refuses before a pod exists.
func Measure(ctx context.Context, cs kubernetes.Interface, f Facts, o MeasureOptions) (m *Measurement, err error) {
	m = &Measurement{Namespace: NamespacePrefix + o.ID, Load: o.Load}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "diagnose: "+format+"\n", a...)
		}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	if o.Logs == nil {
		o.Logs = func(ctx context.Context, ns, pod, container string) ([]byte, error) {
			return podLog(ctx, cs, ns, pod, container)
		}
	}
	nodes := ProbeNodes(f.Nodes, o.Load.Nodes)
	if len(nodes) == 0 {
		return m, errors.New("measure: no ready node to probe (or nodes not readable)")
	}
	if f.DNS.VIP == "" {
		return m, errors.New("measure: the cluster DNS VIP is unknown")
	}
	probes := PlanProbes(f, nodes)
	var probePods []*corev1.Pod
	for _, p := range probes {
		pod, err := ProbePod(o.ID, p, o.Images, o.Load, o.ClusterDomain)
		if err != nil {
			return m, fmt.Errorf("measure: %w", err)
		}
		probePods = append(probePods, pod)
	}
	counterNodes := counterNodes(f, nodes)
	var counterPods []*corev1.Pod
	if o.Counters {
		for i, n := range counterNodes {
			pod, err := CounterPod(o.ID, n, i, o.Images, o.Load)
			if err != nil {
				return m, fmt.Errorf("measure: %w", err)
			}
			counterPods = append(counterPods, pod)
		}
	} else {
		m.CountersNote = "not read: needs --allow-privileged (a hostNetwork pod per node)"
	}

	ns := NamespaceObject(o.ID)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return m, fmt.Errorf("measure: create namespace %s: %w", ns.Name, err)
	}
	say("namespace %s created", ns.Name)
	defer func() {
		// Whatever happened (an error, Ctrl-C), the namespace goes, and the
		// check that nothing is left runs on a context of its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		m.Cleanup = Cleanup(cctx, cs, o.ID)
		say("%s", m.Cleanup)
	}()

	for _, p := range probePods {
		if err := dryRun(ctx, cs, p); err != nil {
			m.Refused = fmt.Sprintf("probe pod %s: %v", p.Name, err)
			say("admission refused the probe pods' dry run: no probe runs")
			return m, nil
		}
	}
	if len(counterPods) > 0 {
		// One stands for all: the counter pods differ only in their node.
		if err := dryRun(ctx, cs, counterPods[0]); err != nil {
			m.CountersNote = fmt.Sprintf("not read: admission refused the hostNetwork counter pod: %v", err)
			counterPods = nil
		}
	}

	// Counter pods first: a snapshot must exist before the first lookup.
	if _, err := createAll(ctx, cs, counterPods); err != nil {
		return m, err
	}
	if err := waitStarted(ctx, cs, counterPods, o.StartTimeout); err != nil {
		m.CountersNote = "not read: " + err.Error()
		counterPods = nil
	}
	if len(counterPods) > 0 {
		if err := sleep(ctx, o.Settle); err != nil {
			return m, err
		}
	}
	say("%d probe pods on %d node(s) for %s at %g lookups/s each", len(probePods), len(nodes), o.Load.Duration, o.Load.Rate)
	admitted, err := createAll(ctx, cs, probePods)
	if err != nil {
		return m, err
	}
	for i, p := range admitted {
		// The pod as admitted: a mutating webhook may have changed its
		// resolv.conf options, and with them the retry interval.
		var opts []corev1.PodDNSConfigOption
		if p.Spec.DNSConfig != nil {
			opts = p.Spec.DNSConfig.Options
		}
		probes[i].RetryUS = RetryThresholdUS(probes[i].Variant.Backend, opts)
	}
	finished := waitFinished(ctx, cs, probePods, o.StartTimeout+o.Load.Duration+60*time.Second)
	if ctx.Err() != nil {
		return m, ctx.Err()
	}
	for i, p := range probes {
		raw, err := o.Logs(ctx, m.Namespace, p.Pod, workload.ProbeContainer)
		b := ParseProbeLog(p, bytes.NewReader(raw))
		if err != nil {
			b.Problem = joinProblems(b.Problem, err.Error())
		}
		if finished[i] != "" {
			b.Problem = joinProblems(finished[i], b.Problem)
		}
		m.Bursts = append(m.Bursts, b)
	}
	if len(counterPods) > 0 {
		if err := sleep(ctx, o.Settle); err != nil {
			return m, err
		}
		m.Counters = readCounters(ctx, o.Logs, m.Namespace, counterPods, m.Bursts)
	}
	return m, nil
}

// counterNodes are the probed nodes and the nodes of the DNS pods: a DNAT
// clash is counted where the DNAT happens, on the client's node; the DNS
// pods' nodes show the replies' side.
func counterNodes(f Facts, probed []string) []string {
	out := slices.Clone(probed)
	for _, e := range f.DNS.Endpoints {
		if e.Ready && e.Node != "" && !slices.Contains(out, e.Node) {
			out = append(out, e.Node)
		}
	}
	return out
}

func dryRun(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) error {
	_, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// createAll creates the pods and returns them as admitted (the object the
// API server answered, or the pod itself when it answered none).
func createAll(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, p := range pods {
		created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return out, fmt.Errorf("measure: create pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		if created == nil || created.Name == "" {
			created = p
		}
		out = append(out, created)
	}
	return out, nil
}

// waitStarted waits until every counter pod's container runs; the first
// that cannot start, or the timeout, is the error.
func waitStarted(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod, timeout time.Duration) error {
	ends := waitPods(ctx, cs, pods, timeout, func(p *corev1.Pod) (bool, string) {
		// A container that has run, even one that ended, has written
		// snapshots to its log: that is what is read.
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return true, ""
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.State.Running != nil || st.State.Terminated != nil {
				return true, ""
			}
		}
		return false, ""
	})
	for i, e := range ends {
		if e != "" {
			return fmt.Errorf("pod %s: %s", pods[i].Name, e)
		}
	}
	return nil
}

// cannotStart are the waiting reasons of a container that will not start
// by waiting longer: a probe image the nodes cannot get, a bad spec.
var cannotStart = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

// waitFinished waits until every probe pod has ended and says per pod how
// it ended when not well ("" for a pod that succeeded).
func waitFinished(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod, timeout time.Duration) []string {
	return waitPods(ctx, cs, pods, timeout, func(p *corev1.Pod) (bool, string) {
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return true, ""
		case corev1.PodFailed:
			return true, failure(p)
		}
		return false, ""
	})
}

// waitPods polls pods with one List per second (not one Get per pod: a
// user's API server is not ours to load) until done says each is done, and
// returns per pod its problem ("" for none). A pod that cannot start, or
// is gone, is done at once with the reason; the timeout ends the rest.
func waitPods(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod, timeout time.Duration, done func(*corev1.Pod) (bool, string)) []string {
	out := make([]string, len(pods))
	finished := make([]bool, len(pods))
	if len(pods) == 0 {
		return out
	}
	ns := pods[0].Namespace
	sel := LabelID + "=" + pods[0].Labels[LabelID] + "," + LabelRole + "=" + pods[0].Labels[LabelRole]
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, nil // a transient error: poll again
		}
		byName := map[string]*corev1.Pod{}
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
		}
		all := true
		for i, want := range pods {
			if finished[i] {
				continue
			}
			p, ok := byName[want.Name]
			switch {
			case !ok:
				out[i], finished[i] = "pod deleted", true
			default:
				if d, problem := done(p); d {
					out[i], finished[i] = problem, true
				} else if why := stuck(p); why != "" {
					out[i], finished[i] = why, true
				}
			}
			all = all && finished[i]
		}
		return all, nil
	})
	if err != nil {
		for i := range pods {
			if !finished[i] {
				out[i] = fmt.Sprintf("not done within %s: %v", timeout, err)
			}
		}
	}
	return out
}

// failure says how a failed pod's container ended.
func failure(p *corev1.Pod) string {
	for _, st := range p.Status.ContainerStatuses {
		if t := st.State.Terminated; t != nil {
			return fmt.Sprintf("probe exited with code %d (%s)", t.ExitCode, t.Reason)
		}
	}
	return strings.TrimSpace("pod failed: " + p.Status.Reason + " " + p.Status.Message)
}

// stuck says why a pod's container cannot start, or "".
func stuck(p *corev1.Pod) string {
	for _, st := range p.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil && cannotStart[w.Reason] {
			return fmt.Sprintf("cannot start: %s: %s", w.Reason, w.Message)
		}
	}
	return ""
}

func podLog(ctx context.Context, cs kubernetes.Interface, ns, pod, container string) ([]byte, error) {
	raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", pod, err)
	}
	return raw, nil
}

// readCounters pairs each counter pod's snapshots around the window of the
// probes on its node (the same clock), or of every probe for a node that
// ran none (a DNS pod's node).
func readCounters(ctx context.Context, logs func(context.Context, string, string, string) ([]byte, error), ns string, pods []*corev1.Pod, bursts []Burst) []NodeCounters {
	window := func(node string) (int64, int64) {
		var first, last int64
		for _, b := range bursts {
			if (node != "" && b.Node != node) || b.FirstNS == 0 {
				continue
			}
			if first == 0 || b.FirstNS < first {
				first = b.FirstNS
			}
			last = max(last, b.LastNS)
		}
		return first, last
	}
	var out []NodeCounters
	for _, p := range pods {
		node := p.Spec.NodeName
		raw, err := logs(ctx, ns, p.Name, "counters")
		if err != nil {
			out = append(out, NodeCounters{Node: node, Note: "not read: " + err.Error()})
			continue
		}
		snaps, err := ParseCounterLog(bytes.NewReader(raw))
		if err != nil {
			out = append(out, NodeCounters{Node: node, Note: "not read: " + err.Error()})
			continue
		}
		first, last := window(node)
		if first == 0 {
			first, last = window("")
		}
		out = append(out, AroundWindow(node, snaps, first, last))
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func joinProblems(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
