package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labrun.dev/labrun/pkg/chaos"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// cleanupTimeout bounds each teardown step, which also runs after an
// interrupt: the one bound of the deletions after a failure.
const cleanupTimeout = cluster.CleanupTimeout

// clusterRun is one lab cluster serving the cells of its shape.
type clusterRun struct {
	c        *cluster.Cluster
	run      results.RunDir
	vip      string         // the kube-dns Service ClusterIP, where the race is emulated
	replicas int            // CoreDNS replicas
	workers  []cluster.Node // where probe pods go
	images   map[string]string
	progress io.Writer
	// noCapture says why cells capture no DNS on the nodes (Testbed.NoCapture).
	noCapture string
	// lane is "" or, for one lane of cells side by side, which lane and
	// its workers: c and workers are then that lane's nodes only.
	lane string

	deleting *namespaces // shared by the lanes of a cluster

	// kept is the race emulator's agent the lane's last cell left running,
	// for the next cell if it needs the same one (nil: none runs).
	kept *keptAgent
	// newAgent makes the agent a cell needs on c (chaos.NewAgent; a test's
	// fake).
	newAgent func(c *cluster.Cluster, cell scenario.Cell, namespace string) (agent, error)
}

// agent is the race emulator's agent on a lane's nodes (chaos.Agent).
type agent interface {
	chaos.Fault
	// Spec is what it runs: equal specs are the same agent.
	Spec() string
}

// keptAgent is an agent and the namespace made for it (nil on an existing
// cluster, where it runs in the run's one namespace).
type keptAgent struct {
	agent
	namespace *corev1.Namespace
}

// namespaces are the cell namespaces being deleted (settle waits for them).
type namespaces struct {
	mu    sync.Mutex
	names []string
}

// newClusterRun reads what the cells need from a cluster that is up.
func newClusterRun(ctx context.Context, tb *Testbed, run results.RunDir, shape scenario.Shape, progress io.Writer) (*clusterRun, error) {
	svc, err := tb.Cluster.Client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster DNS service of %s: %w", tb.Cluster.Name, err)
	}
	cr := &clusterRun{
		c: tb.Cluster, run: run, vip: svc.Spec.ClusterIP, workers: tb.Cluster.Workers(),
		replicas: shape.Cluster.DNS.Replicas, images: map[string]string{}, progress: progress, deleting: &namespaces{},
		noCapture: tb.NoCapture,
	}
	cr.newAgent = func(c *cluster.Cluster, cell scenario.Cell, namespace string) (agent, error) {
		return chaos.NewAgent(c, cell, chaos.AgentOptions{
			Run: run.Name(), Namespace: namespace, Image: cr.images["labagent"], VIP: cr.vip, Replicas: cr.replicas,
		})
	}
	if cr.replicas < 1 {
		cr.replicas = cluster.DefaultSpec().DNSReplicas
	}
	if a := tb.Cluster.Adopted; a != nil {
		// An existing cluster: the images its nodes hold or the user's
		// registry serves (a cell whose image is missing was not planned),
		// and as many DNS replicas as it has.
		maps.Copy(cr.images, a.Images)
		if a.Shape.DNSEndpoints > 0 {
			cr.replicas = a.Shape.DNSEndpoints
		}
		return cr, nil
	}
	for _, name := range []string{"probe-glibc", "probe-musl", "labagent"} {
		step := tb.Images.LabImage(name)
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

// cellResult is a cell's status and what its progress line shows.
type cellResult struct {
	Status results.Status
	Slow   uint64 // lookups at a 5 s retry or later
	Drops  string // counter deltas, summed over nodes
	// Stages is how long setup, the probes and teardown took.
	Stages string
}

// teardown is a cell's undo steps: each set-up step that made something
// pushes the step that removes it, and they run in reverse order when the
// cell ends, however it ends (an error, a panic, an interrupt), each with a
// context of its own that an interrupt does not cancel. Steps pushed
// alongside one another run at the same time: they touch different things.
type teardown struct {
	steps []undo
}

type undo struct {
	fn        func(context.Context) []string // the problems met
	alongside bool
}

// push adds a step that runs alone.
func (t *teardown) push(name string, fn func(context.Context) error) {
	t.steps = append(t.steps, undo{fn: named(name, fn)})
}

// pushAlongside adds a step that runs at the same time as the steps next to
// it that were pushed alongside too.
func (t *teardown) pushAlongside(name string, fn func(context.Context) error) {
	t.steps = append(t.steps, undo{fn: named(name, fn), alongside: true})
}

// awaitAlongside adds, alongside, a wait for something that ends on its own
// and says what went wrong.
func (t *teardown) awaitAlongside(wait func() []string) {
	t.steps = append(t.steps, undo{fn: func(context.Context) []string { return wait() }, alongside: true})
}

func named(name string, fn func(context.Context) error) func(context.Context) []string {
	return func(ctx context.Context) []string {
		if err := fn(ctx); err != nil {
			return []string{fmt.Sprintf("teardown %s: %v", name, err)}
		}
		return nil
	}
}

// run runs the undo steps, last first, and returns their problems in that
// order. A step that panics is a problem of the cell (in its own goroutine,
// the cell's recover would not see it and the process would end).
func (t *teardown) run(ctx context.Context) []string {
	step := func(u undo) (problems []string) {
		defer func() {
			if r := recover(); r != nil {
				problems = append(problems, fmt.Sprintf("teardown: panic: %v", r))
			}
		}()
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		return u.fn(cleanup)
	}
	var problems []string
	for i := len(t.steps) - 1; i >= 0; {
		group := []undo{t.steps[i]}
		for i--; group[0].alongside && i >= 0 && t.steps[i].alongside; i-- {
			group = append(group, t.steps[i])
		}
		found := make([][]string, len(group))
		var wg sync.WaitGroup
		for k, u := range group {
			wg.Go(func() { found[k] = step(u) })
		}
		wg.Wait()
		problems = append(problems, slices.Concat(found...)...)
	}
	t.steps = nil
	return problems
}

// runCell runs one cell from namespace to teardown. Whatever fails makes the
// cell incomplete with the reason; an interrupt (ctx done) stops the probes
// and keeps what they wrote; a panic is a problem of the cell, after which
// the teardown still runs and the run goes on.
func (cr *clusterRun) runCell(ctx context.Context, cell scenario.Cell) (res cellResult) {
	res.Status = results.Status{Cell: cell.ID, Started: time.Now().UTC()}
	var problems []string
	var undo teardown
	start := time.Now()
	var probesStart, probesEnd time.Time
	adopted := cr.c.Adopted
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, fmt.Sprintf("panic: %v", r))
			if cr.progress != nil {
				fmt.Fprintf(cr.progress, "cell %s: panic: %v\n%s", cell.ID, r, debug.Stack())
			}
		}
		if k := cr.kept; k != nil && (adopted != nil || len(problems) > 0 || ctx.Err() != nil) {
			// The agent goes on to the next cell only after a cell that
			// went well, and never on a cluster the lab did not make.
			cr.kept = nil
			undo.pushAlongside(chaos.AgentName, func(ctx context.Context) error { return cr.dropAgent(ctx, k) })
		}
		teardownStart := time.Now()
		if cr.progress != nil && len(undo.steps) > 0 {
			fmt.Fprintf(cr.progress, "cell %s: tearing down (%d steps)\n", cell.ID, len(undo.steps))
		}
		problems = append(problems, undo.run(ctx)...)
		if k := cr.kept; k != nil && len(problems) > 0 {
			// The teardown found a problem: the cell did not complete.
			cr.kept = nil
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			if err := cr.dropAgent(cleanup, k); err != nil {
				problems = append(problems, fmt.Sprintf("teardown %s: %v", chaos.AgentName, err))
			}
			cancel()
		}
		res.Status.Finished = time.Now().UTC()
		if !probesEnd.IsZero() {
			res.Stages = fmt.Sprintf("setup %s, probes %s, teardown %s", probesStart.Sub(start).Round(100*time.Millisecond),
				probesEnd.Sub(probesStart).Round(100*time.Millisecond), time.Since(teardownStart).Round(100*time.Millisecond))
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
	problem := func(err error) bool {
		if err != nil {
			problems = append(problems, err.Error())
		}
		return err != nil
	}

	// A resumed cell starts afresh: an interrupted attempt's samples must
	// not mix with this one's.
	if err := os.RemoveAll(cr.run.RawDir(cell.ID)); err != nil {
		problem(fmt.Errorf("remove earlier samples of %s: %w", cell.ID, err))
		return res
	}
	cs := cr.c.Client
	ns := workload.CellNamespace(cr.run.Name(), cell.ID)
	if adopted != nil {
		// An existing cluster: every cell runs in the run's one namespace;
		// the cell's pods go at its teardown, and are awaited.
		ns.Name = adopted.Namespace
		undo.push("pods of the cell in "+ns.Name, func(ctx context.Context) error {
			return workload.DeleteCellPods(ctx, cs, ns.Name, cell.ID)
		})
	} else {
		if problem(workload.CreateNamespace(ctx, cs, ns)) {
			return res
		}
		// The namespace goes in the background: the cell's numbers are read by
		// then, and its pods have ended; settle waits for it before a kept
		// cluster is handed over (a deleted one takes it along), instead of
		// every cell waiting ~5 s.
		undo.push("namespace "+ns.Name, func(ctx context.Context) error { return cr.deleteLater(ctx, ns.Name) })
	}
	withAgent := chaos.NeedsAgent(cell)
	if problem(cr.agentFor(ctx, cell, withAgent, ns.Name)) {
		return res
	}
	// Counters that cannot be read (an existing cluster without
	// --allow-privileged) are recorded as not read, never as zeros.
	notRead := ""
	before, err := collect.ReadCounters(ctx, cr.c, withAgent)
	switch {
	case cluster.IsNodeAccess(err) && !withAgent:
		notRead = cluster.NotRead(err)
	case err != nil:
		problem(fmt.Errorf("counters before: %w", err))
		return res
	}
	pods, err := workload.ProbePods(cell, nodeNames(cr.workers), cr.run.Name(), ns.Name, cr.images[workload.ProbeImage(cell.Backend)])
	if problem(err) {
		return res
	}
	if adopted != nil {
		for _, p := range pods {
			workload.ForExistingCluster(p, adopted.PullPolicy, probeDeadline(cell))
		}
	}
	var capt *collect.CellCapture // DNS captures, for claims 8 and 9
	if adopted != nil && adopted.NoNodeAccess != "" {
		// No way onto the nodes: the cell runs without captures.
		if cr.progress != nil {
			fmt.Fprintf(cr.progress, "cell %s: no DNS capture (tcpdump on the nodes %s)\n", cell.ID, strings.TrimPrefix(adopted.NoNodeAccess, "not read: "))
		}
	} else if cr.noCapture != "" {
		if cr.progress != nil {
			fmt.Fprintf(cr.progress, "cell %s: no DNS capture (%s)\n", cell.ID, cr.noCapture)
		}
	} else if capt, err = collect.StartCellCapture(ctx, cr.c, cr.run, cell, ns.Name, cr.workers); problem(err) {
		return res
	}
	undo.pushAlongside("capture", func(ctx context.Context) error { return capt.Finish(ctx, cr.progress) })
	probesStart = time.Now()
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			problem(fmt.Errorf("create probe pod %s: %w", p.Name, err))
			return res
		}
	}
	if cr.progress != nil {
		fmt.Fprintf(cr.progress, "cell %s: probes running (%d pods)\n", cell.ID, len(pods))
	}
	logs, ended := collect.Probes(ctx, cs, cr.run, cell, ns.Name, pods)
	probesEnd = time.Now()
	// Every probe wrote its summary: the counters are read now, and the
	// pods' ends (the kubelet reports them a second or two later) are
	// awaited alongside the capture's and the agent's teardown.
	undo.awaitAlongside(ended)

	if notRead != "" {
		problem(cr.run.WriteCounters(results.Counters{Cell: cell.ID, NotRead: notRead}))
		res.Drops = "counters " + notRead
		return finishAccounting(res, logs, &problems)
	}
	// Read the counters even after an interrupt: they belong to what was measured.
	afterCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	after, err := collect.ReadCounters(afterCtx, cr.c, withAgent)
	cancel()
	// A node container that restarted (Docker restarted, the node was
	// killed) lost the probe pods, the agent and every counter of its
	// network namespace: whatever else failed, that is the reason.
	for _, node := range slices.Backward(collect.Restarted(before, after)) {
		problems = slices.Insert(problems, 0, fmt.Sprintf("node %s restarted during the cell (its counters began again at zero, its pods were lost): the cell measured nothing that holds; --resume runs it again", node))
	}
	if err != nil {
		problem(fmt.Errorf("counters after: %w", err))
	} else {
		counters := collect.CellCounters(cell.ID, before, after)
		problem(cr.run.WriteCounters(counters))
		res.Drops = dropsLine(counters)
	}
	return finishAccounting(res, logs, &problems)
}

// agentFor leaves running on the lane the agent a cell needs (none when
// needs is false): the one the lane's last cell left when it is the same
// (its counters are read before and after each cell, so a cell's numbers
// are its own), else a new one, once the last one is gone. On an existing
// cluster the agent goes in the cell's namespace (the run's one).
func (cr *clusterRun) agentFor(ctx context.Context, cell scenario.Cell, needs bool, cellNamespace string) error {
	var want *keptAgent
	if needs {
		want = &keptAgent{}
		where := cellNamespace
		if cr.c.Adopted == nil {
			want.namespace = workload.CellNamespace(cr.run.Name(), "race emulator for "+cell.ID)
			where = want.namespace.Name
		}
		var err error
		if want.agent, err = cr.newAgent(cr.c, cell, where); err != nil {
			return err
		}
	}
	if k := cr.kept; k != nil {
		if want != nil && k.Spec() == want.Spec() {
			return nil // the same agent goes on
		}
		cr.kept = nil
		// With a context of its own: Ctrl-C must not cut the removal short.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := cr.dropAgent(cleanup, k); err != nil {
			return fmt.Errorf("the race emulator the lane's last cell left: %w", err)
		}
	}
	if want == nil {
		return nil
	}
	if want.namespace != nil {
		if err := workload.CreateNamespace(ctx, cr.c.Client, want.namespace); err != nil {
			return err
		}
	}
	cr.kept = want // also after a failed Inject: it may have made the DaemonSet
	return want.Inject(ctx)
}

// dropAgent removes an agent (chaos.Agent.Revert: every node checked) and
// starts the deletion of its namespace.
func (cr *clusterRun) dropAgent(ctx context.Context, k *keptAgent) error {
	err := k.Revert(ctx)
	if k.namespace != nil {
		err = errors.Join(err, cr.deleteLater(ctx, k.namespace.Name))
	}
	return err
}

// endLane removes the agent the lane's last cell left, if any.
func (cr *clusterRun) endLane(ctx context.Context) error {
	k := cr.kept
	if k == nil {
		return nil
	}
	cr.kept = nil
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := cr.dropAgent(cleanup, k); err != nil {
		return fmt.Errorf("cluster %s: race emulator after the last cell: %w", cr.c.Name, err)
	}
	return nil
}

// deleteLater starts a namespace's deletion; settle waits for it.
func (cr *clusterRun) deleteLater(ctx context.Context, name string) error {
	if err := workload.StartDeleteNamespace(ctx, cr.c.Client, name); err != nil {
		return err
	}
	cr.deleting.mu.Lock()
	cr.deleting.names = append(cr.deleting.names, name)
	cr.deleting.mu.Unlock()
	return nil
}

// finishAccounting adds the probes' accounting to a cell's result.
func finishAccounting(res cellResult, logs []*collect.ProbeLog, problems *[]string) cellResult {
	acc := collect.Account(logs)
	res.Status.Probes, res.Status.Expected, res.Status.Collected = acc.Probes, acc.Expected, acc.Collected
	if acc.Problem != "" {
		*problems = append(*problems, "accounting: "+acc.Problem)
	}
	for _, l := range logs {
		res.Slow += l.Slow
	}
	return res
}

// probeDeadline bounds a probe pod's life on an existing cluster
// (activeDeadlineSeconds): the kubelet ends it even when labrun is gone.
func probeDeadline(cell scenario.Cell) time.Duration {
	return time.Duration(cell.Load.Duration) + collect.StartTimeout + collect.LookupGrace + collect.StopGrace + 2*time.Minute
}

// settle waits until every cell namespace whose deletion started is gone,
// and says which are not.
func (cr *clusterRun) settle(ctx context.Context) error {
	cr.deleting.mu.Lock()
	names := cr.deleting.names
	cr.deleting.names = nil
	cr.deleting.mu.Unlock()
	var errs []error
	for _, ns := range names {
		if err := workload.WaitNamespaceGone(ctx, cr.c.Client, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func nodeNames(nodes []cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// dropsLine sums a cell's counter deltas over nodes for the progress line.
func dropsLine(c results.Counters) string {
	var insertFailed, clashres, dropped int64
	emulator := false
	for _, n := range c.Nodes {
		d := collect.Delta(n.Before, n.After)
		insertFailed += d["insert_failed"]
		clashres += d["clashres"]
		if before, after, ok := n.EmulatorCounts(); ok {
			emulator = true
			dropped += int64(after.Dropped) - int64(before.Dropped)
		}
	}
	s := fmt.Sprintf("insert_failed +%d, clashres +%d", insertFailed, clashres)
	if emulator {
		s += fmt.Sprintf(", emulator dropped +%d", dropped)
	}
	return s
}
