package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

const (
	// startTimeout bounds the wait for a probe container to start.
	startTimeout = 2 * time.Minute
	// lookupGrace is how long after its duration a probe may still finish
	// the lookups in flight (a few 5 s timeouts in a row).
	lookupGrace = 90 * time.Second
	// stopGrace is how long probes get, after Ctrl-C deleted their pods, to
	// write their summary before the streams are cut.
	stopGrace = 20 * time.Second
	// cleanupTimeout bounds each teardown step that runs after an interrupt.
	cleanupTimeout = 3 * time.Minute
)

// clusterRun is one lab cluster serving the cells of its shape.
type clusterRun struct {
	lab      *Lab
	cs       kubernetes.Interface
	run      results.Run
	runID    string
	vip      string         // the kube-dns Service ClusterIP, where the race is emulated
	replicas int            // CoreDNS replicas
	workers  []cluster.Node // where probe pods go
	images   map[string]string
	progress io.Writer
}

// newClusterRun reads what the cells need from a cluster that is up.
func newClusterRun(ctx context.Context, l *Lab, run results.Run, shape scenario.Shape, progress io.Writer) (*clusterRun, error) {
	cs := l.Cluster.Client
	svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster DNS service of %s: %w", l.Cluster.Name, err)
	}
	cr := &clusterRun{
		lab: l, cs: cs, run: run, runID: run.Name(), vip: svc.Spec.ClusterIP,
		replicas: shape.Cluster.DNS.Replicas, images: map[string]string{}, progress: progress,
	}
	if cr.replicas < 1 {
		cr.replicas = cluster.DefaultSpec().DNSReplicas
	}
	cr.workers = WorkerNodes(l.Cluster.Nodes)
	for _, name := range []string{"probe-glibc", "probe-musl", "labagent"} {
		step := l.Images.LabImage(name)
		if step == nil {
			return nil, fmt.Errorf("the image plan has no lab image %s", name)
		}
		ref, err := images.ImageRef(step)
		if err != nil {
			return nil, err
		}
		cr.images[name] = ref
	}
	return cr, nil
}

// WorkerNodes are the nodes probe pods go to: the workers, or every node of
// a cluster that has none.
func WorkerNodes(nodes []cluster.Node) []cluster.Node {
	var out []cluster.Node
	for _, n := range nodes {
		if n.Role == "worker" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nodes
	}
	return out
}

// ProbePods are a cell's probe pods: PodsPerNode on each worker, pinned to
// it (spec.nodeName), numbered across the workers.
func ProbePods(cell scenario.Cell, workers []cluster.Node, run, namespace, image string) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	for w, node := range workers {
		for i := 0; i < cell.Load.PodsPerNode; i++ {
			p, err := workload.ProbePod(cell, workload.PodOptions{
				Run: run, Namespace: namespace, Index: w*cell.Load.PodsPerNode + i, Node: node.Name, Image: image,
			})
			if err != nil {
				return nil, err
			}
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("cell %s: no probe pod (podsPerNode %d, %d nodes)", cell.ID, cell.Load.PodsPerNode, len(workers))
	}
	return pods, nil
}

// cellResult is a cell's status and what its progress line shows.
type cellResult struct {
	Status results.Status
	Slow   uint64 // lookups ≥ 4.5 s
	Drops  string // counter deltas, summed over nodes
	// Stages is how long setup, the probes and teardown took.
	Stages string
}

// runCell runs one cell from namespace to teardown. It never returns early
// without tearing down; whatever fails makes the cell incomplete with the
// reason, and an interrupt (ctx done) stops the probes and keeps what they
// wrote.
func (cr *clusterRun) runCell(ctx context.Context, cell scenario.Cell) (res cellResult) {
	res.Status = results.Status{Cell: cell.ID, Started: time.Now().UTC()}
	var problems []string
	problem := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	ns := CellNamespace(cr.runID, cell.ID)
	withAgent := NeedsAgent(cell)
	start := time.Now()
	var probesStart, probesEnd time.Time
	defer func() {
		teardown := time.Now()
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		// The agent and the namespace go at once; the agent's rules are
		// checked while the namespace is being emptied.
		if withAgent {
			problem(deleteAgent(cleanup, cr.cs, ns.Name))
		}
		problem(startDeleteNamespace(cleanup, cr.cs, ns.Name))
		if withAgent {
			problem(checkAgentGone(cleanup, cr.cs, cr.lab.Cluster, ns.Name))
		}
		problem(waitNamespaceGone(cleanup, cr.cs, ns.Name))
		res.Status.Finished = time.Now().UTC()
		if !probesEnd.IsZero() {
			res.Stages = fmt.Sprintf("setup %s, probes %s, teardown %s", probesStart.Sub(start).Round(100*time.Millisecond),
				probesEnd.Sub(probesStart).Round(100*time.Millisecond), time.Since(teardown).Round(100*time.Millisecond))
		}
		if ctx.Err() != nil {
			problems = append([]string{"interrupted (Ctrl-C) while the cell ran"}, problems...)
		}
		if len(problems) > 0 {
			res.Status.State, res.Status.Reason = results.Incomplete, strings.Join(problems, "; ")
		} else {
			res.Status.State = results.Complete
		}
	}()

	// A resumed cell starts afresh: an interrupted attempt's samples must
	// not mix with this one's.
	if err := os.RemoveAll(cr.run.RawDir(cell.ID)); err != nil {
		problem(fmt.Errorf("remove earlier samples of %s: %w", cell.ID, err))
		return res
	}
	if err := createNamespace(ctx, cr.cs, ns); err != nil {
		problem(err)
		return res
	}
	if withAgent {
		ds, err := AgentDaemonSet(cell, AgentOptions{Run: cr.runID, Namespace: ns.Name, Image: cr.images["labagent"], VIP: cr.vip, Replicas: cr.replicas})
		if err == nil {
			err = installAgent(ctx, cr.cs, cr.lab.Cluster, ds)
		}
		if err != nil {
			problem(err)
			return res
		}
	}
	before, err := readCounters(ctx, cr.lab.Cluster, withAgent)
	if err != nil {
		problem(fmt.Errorf("counters before: %w", err))
		return res
	}
	pods, err := ProbePods(cell, cr.workers, cr.runID, ns.Name, cr.images[workload.ProbeImage(cell.Backend)])
	if err != nil {
		problem(err)
		return res
	}
	capt, err := cr.startCapture(ctx, cell, ns.Name) // DNS captures, for claims 8 and 9
	if err != nil {
		problem(err)
		return res
	}
	defer func() { problem(cr.finishCapture(ctx, capt, cell.ID)) }()
	probesStart = time.Now()
	for _, p := range pods {
		if _, err := cr.cs.CoreV1().Pods(ns.Name).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			problem(fmt.Errorf("create probe pod %s: %w", p.Name, err))
			return res
		}
	}
	logs, podProblems := cr.collect(ctx, cell, ns.Name, pods)
	problems = append(problems, podProblems...)
	probesEnd = time.Now()

	// Read the counters even after an interrupt: they belong to what was measured.
	afterCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	after, err := readCounters(afterCtx, cr.lab.Cluster, withAgent)
	cancel()
	if err != nil {
		problem(fmt.Errorf("counters after: %w", err))
	} else {
		counters := cellCounters(cell.ID, before, after)
		problem(cr.run.WriteCounters(counters))
		res.Drops = dropsLine(counters)
	}
	acc := Account(logs)
	res.Status.Probes, res.Status.Expected, res.Status.Collected = acc.Probes, acc.Expected, acc.Collected
	if acc.Problem != "" {
		problems = append(problems, "accounting: "+acc.Problem)
	}
	for _, l := range logs {
		res.Slow += l.Slow
	}
	return res
}

// dropsLine sums a cell's counter deltas over nodes for the progress line.
func dropsLine(c results.Counters) string {
	var insertFailed, clashres, dropped int64
	emulator := false
	for _, n := range c.Nodes {
		d := collect.Delta(n.Before, n.After)
		insertFailed += d["insert_failed"]
		clashres += d["clashres"]
		if n.EmulatorAfter != nil {
			emulator = true
			dropped += int64(n.EmulatorAfter["dropped"]) - int64(n.EmulatorBefore["dropped"])
		}
	}
	s := fmt.Sprintf("insert_failed +%d, clashres +%d", insertFailed, clashres)
	if emulator {
		s += fmt.Sprintf(", emulator dropped +%d", dropped)
	}
	return s
}
