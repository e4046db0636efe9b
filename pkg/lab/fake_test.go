package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// A cluster with a fake clientset and a scripted node runner: what runShape
// and runCell do to it is recorded, API calls and node commands in one log.

// events is the log both the clientset and the runner write to.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(s string) { e.mu.Lock(); e.all = append(e.all, s); e.mu.Unlock() }

func (e *events) list() []string { e.mu.Lock(); defer e.mu.Unlock(); return slices.Clone(e.all) }

// index is where the first event starting with prefix is, or -1.
func (e *events) index(prefix string) int {
	return slices.IndexFunc(e.list(), func(s string) bool { return strings.HasPrefix(s, prefix) })
}

const conntrackStat = `entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
000000f6  00000631 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000001
`

// script says what a node command does: its output, or an error; fail and
// panics name commands (by a word they contain) that fail or panic.
type script struct {
	fail   string
	panics string
	// restarts names a node whose init starts anew before every counters
	// read: its container restarted.
	restarts string
	// onExec, when set, sees every node command first (it may block: the
	// runner holds no lock).
	onExec func(node, what string)
}

// initStat is /proc/1/stat of a node whose init started 1734 ticks after
// boot.
const initStat = "1 (systemd) S 0 1 1 0 -1 4194560 29453 1418764 90 1201 52 91 3067 2164 20 0 1 0 1734 23330816 3062"

// fakeCluster is a cluster of a control plane and the spec's workers
// (named as kind names them) whose API server is a fake clientset. Pods
// succeed as soon as they are created (their log is the fake clientset's);
// hook runs on every pod creation.
func fakeCluster(s cluster.Spec, ev *events, sc script, hook func()) *cluster.Cluster {
	name := s.Name
	nodes := []cluster.Node{{Name: name + "-control-plane", Role: "control-plane", IP: "172.18.0.2"}}
	for i := range s.Workers {
		n := cluster.Node{Name: name + "-worker", Role: "worker", IP: fmt.Sprintf("172.18.0.%d", 3+i)}
		if i > 0 {
			n.Name += strconv.Itoa(i + 1)
		}
		nodes = append(nodes, n)
	}
	objs := []runtime.Object{&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10"},
	}}
	for _, n := range nodes {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"}})
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			ev.add("api " + a.GetVerb() + " " + a.GetResource().Resource)
		}
		return false, nil, nil
	})
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if hook != nil {
			hook()
		}
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
		return false, nil, nil
	})
	var restarts atomic.Int64
	run := cluster.RunnerFunc(func(_ context.Context, node string, _ io.Reader, argv ...string) ([]byte, error) {
		cmd := strings.Join(argv, " ")
		what := argv[0]
		switch {
		case strings.Contains(cmd, "tcpdump -i any"):
			what = "capture start"
		case strings.Contains(cmd, "kill -INT"):
			what = "capture stop"
		case strings.HasSuffix(cmd, "/proc/net/stat/nf_conntrack"):
			what = "counters"
		}
		ev.add("exec " + what + " on " + node)
		if sc.onExec != nil {
			sc.onExec(node, what)
		}
		switch {
		case sc.panics != "" && what == sc.panics:
			panic("scripted panic in " + what)
		case sc.fail != "" && what == sc.fail:
			return nil, fmt.Errorf("on node %s: %s: scripted failure", node, what)
		case what == "counters" && sc.restarts != "" && strings.HasSuffix(node, sc.restarts):
			restarts.Add(1)
			return []byte(strings.Replace(initStat, " 1734 ", fmt.Sprintf(" %d ", 1734+restarts.Load()), 1) + "\n" + conntrackStat), nil
		case what == "counters":
			return []byte(initStat + "\n" + conntrackStat), nil
		case what == "capture stop":
			return []byte("no capture in this test"), nil
		}
		return nil, nil
	})
	return &cluster.Cluster{Name: name, Client: cs, Nodes: nodes, Runner: run}
}

// fakeProvider hands out fake clusters and records what it was asked.
type fakeProvider struct {
	ev       *events
	sc       script
	hook     func()
	mu       sync.Mutex
	clusters map[string]*cluster.Cluster
}

func (p *fakeProvider) Create(_ context.Context, s cluster.Spec) (*cluster.Cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ev.add("provider create " + s.Name)
	c := fakeCluster(s, p.ev, p.sc, p.hook)
	p.clusters[s.Name] = c
	return c, nil
}

func (p *fakeProvider) Get(_ context.Context, name string) (*cluster.Cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clusters[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("no cluster %s", name)
}

func (p *fakeProvider) Delete(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ev.add("provider delete " + name)
	delete(p.clusters, name)
	return nil
}

func (p *fakeProvider) List(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for n := range p.clusters {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// fakeImages is an image plan whose lab images are named, not built.
func fakeImages() *images.Plan {
	p := &images.Plan{LabNode: &images.Step{Name: "node-test-lab", Image: "labrun/node:test-lab"}}
	for _, n := range []string{"probe-glibc", "probe-musl", "labagent"} {
		p.Lab = append(p.Lab, &images.Step{Name: "image/" + n, Image: "labrun/" + n + ":test"})
	}
	return p
}

// bringUpWith stands a shape's testbed up on the provider: no images are
// built and no addon is installed.
func bringUpWith(p cluster.Provider) func(context.Context, UpOptions) (*Testbed, error) {
	return func(ctx context.Context, o UpOptions) (*Testbed, error) {
		spec := cluster.DefaultSpec()
		spec.Name = o.Name
		forCells(&spec, o.CellsAtOnce)
		c, err := p.Create(ctx, spec)
		if err != nil {
			return nil, err
		}
		return &Testbed{Cluster: c, Images: fakeImages(), Facts: map[string]string{}}, nil
	}
}

// bareCell is a cell on the bare kernel (no agent): glibc, no mitigation.
func bareCell(t *testing.T) scenario.Cell {
	t.Helper()
	return glibcCells(t, "none", "")[0]
}

// glibcCells are the cells of a small one-second glibc scenario with the
// given mitigations (comma-separated) and chaos section ("" for none).
func glibcCells(t *testing.T, mitigations, chaos string) []scenario.Cell {
	t.Helper()
	s, err := scenario.Parse("small.yaml", []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: small}
workload:
  resolvers: [glibc]
  mitigations: [`+mitigations+`]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`+chaos))
	if err != nil {
		t.Fatal(err)
	}
	return s.Expand()
}

func newFakeRun(t *testing.T, ev *events, sc script, hook func()) (*clusterRun, results.RunDir) {
	t.Helper()
	run, err := results.Create(t.TempDir(), "fake-run")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{ev: ev, sc: sc, hook: hook, clusters: map[string]*cluster.Cluster{}}
	tb, err := bringUpWith(p)(context.Background(), UpOptions{Name: "labrun-fake"})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := newClusterRun(context.Background(), tb, run, scenario.Shape{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cr, run
}

// TestRunCellTearsDownInReverse: whatever ends a cell (a failed step, a
// panic, an interrupt), what it made is removed last-made-first, and its
// status says what happened.
func TestRunCellTearsDownInReverse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sc     script
		cancel bool     // Ctrl-C while the probe pods are created
		panics bool     // the probe pods' creation panics
		reason []string // in the status's reason
		undone []string // teardown events, in this order
		never  []string // events that must not happen
	}{
		{
			name:   "counters fail",
			sc:     script{fail: "counters"},
			reason: []string{"counters before", "scripted failure"},
			undone: []string{"api delete namespaces"},
			never:  []string{"exec capture start", "api create pods"},
		},
		{
			name:   "capture start panics on the nodes",
			sc:     script{panics: "capture start"},
			reason: []string{"capture: ", "panic on ", "scripted panic in capture start"},
			undone: []string{"api delete namespaces"},
			never:  []string{"api create pods"},
		},
		{
			name:   "pod creation panics",
			panics: true,
			reason: []string{"panic: scripted panic in pod creation"},
			undone: []string{"exec capture stop", "api delete namespaces"},
		},
		{
			name:   "interrupted",
			cancel: true,
			reason: []string{"interrupted (Ctrl-C) while the cell ran"},
			undone: []string{"exec capture stop", "api delete namespaces"},
		},
		{
			name:   "a node restarts during the cell",
			sc:     script{restarts: "worker2"},
			reason: []string{"node labrun-fake-worker2 restarted during the cell", "--resume runs it again"},
			undone: []string{"exec capture stop", "api delete namespaces"},
		},
		{
			name:   "capture stop fails",
			sc:     script{fail: "capture stop"},
			reason: []string{"teardown capture", "scripted failure"},
			undone: []string{"exec capture stop", "api delete namespaces"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var hook func()
			switch {
			case tc.cancel:
				hook = cancel
			case tc.panics:
				hook = func() { panic("scripted panic in pod creation") }
			}
			cr, _ := newFakeRun(t, ev, tc.sc, hook)
			res := cr.runCell(ctx, bareCell(t))
			got := ev.list()
			if res.Status.State != results.Incomplete {
				t.Errorf("state %s, want incomplete; reason %q", res.Status.State, res.Status.Reason)
			}
			for _, r := range tc.reason {
				if !strings.Contains(res.Status.Reason, r) {
					t.Errorf("reason %q lacks %q", res.Status.Reason, r)
				}
			}
			created := ev.index("api create namespaces")
			if created < 0 {
				t.Fatalf("no namespace created: %q", got)
			}
			last := created
			for _, u := range tc.undone {
				i := slices.IndexFunc(got[last+1:], func(s string) bool { return strings.HasPrefix(s, u) })
				if i < 0 {
					t.Fatalf("teardown %q missing or out of order after event %d: %q", u, last, got)
				}
				last += 1 + i
			}
			for _, n := range tc.never {
				if ev.index(n) >= 0 {
					t.Errorf("%q happened: %q", n, got)
				}
			}
			if res.Status.Finished.IsZero() {
				t.Error("no finish time")
			}
		})
	}
}

// TestRunShapeDeletesTheClusterAfterAFailedCell: a cell that panics is an
// incomplete cell; the shape's other cells run, the cluster is deleted at
// the end, and every cell has a status file.
func TestRunShapeDeletesTheClusterAfterAFailedCell(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sc     script
		cancel bool
		state  results.State
	}{
		{"a node command panics", script{panics: "capture start"}, false, results.Incomplete},
		{"interrupted", script{}, true, results.Incomplete},
		{"probes that left no summary", script{}, false, results.Incomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var hook func()
			if tc.cancel {
				hook = cancel
			}
			p := &fakeProvider{ev: ev, sc: tc.sc, hook: hook, clusters: map[string]*cluster.Cluster{}}
			run, err := results.Create(t.TempDir(), "fake-run")
			if err != nil {
				t.Fatal(err)
			}
			cells := []scenario.Cell{bareCell(t)}
			o := RunOptions{Provider: p, bringUp: bringUpWith(p), Progress: io.Discard, ClusterPrefix: cluster.NamePrefix}
			env := results.Env{Extra: map[string]string{}}
			reached := map[string]results.Status{}
			ps := scenario.PlanShape{Shape: cells[0].Shape, Cells: cells}
			sh := &runShared{run: run, env: &env, eta: &ETA{}, shapes: []scenario.PlanShape{ps}, lanes: []int{1}, parallel: 1}
			if err := runShape(ctx, o, sh, 0, reached); err != nil {
				t.Fatalf("runShape: %v", err)
			}
			got := ev.list()
			created, deleted := ev.index("provider create"), ev.index("provider delete")
			if created < 0 || deleted < created || deleted != len(got)-1 {
				t.Errorf("the cluster must be created first and deleted last: %q", got)
			}
			if left, _ := p.List(ctx); len(left) != 0 {
				t.Errorf("clusters left: %v", left)
			}
			st, ok, err := run.ReadStatus(cells[0].ID)
			if err != nil || !ok {
				t.Fatalf("status of %s: %v %v", cells[0].ID, ok, err)
			}
			if st.State != tc.state || st.Reason == "" || reached[cells[0].ID] != st {
				t.Errorf("status %+v (reached %+v), want %s with a reason", st, reached[cells[0].ID], tc.state)
			}
			t.Logf("status: %s: %s", st.State, st.Reason)
		})
	}
}

// TestRunCellWithoutTcpdump: on nodes without tcpdump (the published node
// image) a cell starts no capture and says why.
func TestRunCellWithoutTcpdump(t *testing.T) {
	ev := &events{}
	cr, _ := newFakeRun(t, ev, script{}, nil)
	var progress strings.Builder
	cr.progress = &progress
	cr.noCapture = "node image docker.io/kindest/node:v1.37.0 has no tcpdump"
	cr.runCell(context.Background(), bareCell(t))
	if ev.index("api create pods") < 0 {
		t.Fatalf("the cell made no probe pod: %q", ev.list())
	}
	for _, never := range []string{"exec capture start", "exec capture stop"} {
		if ev.index(never) >= 0 {
			t.Errorf("%q happened: %q", never, ev.list())
		}
	}
	if want := "no DNS capture (node image docker.io/kindest/node:v1.37.0 has no tcpdump)"; !strings.Contains(progress.String(), want) {
		t.Errorf("progress %q lacks %q", progress.String(), want)
	}
}

func TestNoTcpdump(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		err       error
		want      string
		fails     bool
	}{
		{"there", "/usr/bin/tcpdump\n", nil, "", false},
		{"absent", "absent\n", nil, "node image docker.io/kindest/node:v1.37.0 has no tcpdump", false},
		{"the node cannot be asked", "", fmt.Errorf("docker exec: no such container"), "", true},
	} {
		var asked []string
		c := &cluster.Cluster{Name: "labrun-x", Nodes: []cluster.Node{{Name: "labrun-x-control-plane"}},
			Runner: cluster.RunnerFunc(func(_ context.Context, node string, _ io.Reader, argv ...string) ([]byte, error) {
				asked = append(asked, node+": "+strings.Join(argv, " "))
				return []byte(tc.out), tc.err
			})}
		got, err := noTcpdump(context.Background(), c, "docker.io/kindest/node:v1.37.0")
		if got != tc.want || (err != nil) != tc.fails {
			t.Errorf("%s: noTcpdump = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.fails)
		}
		if len(asked) != 1 || !strings.Contains(asked[0], "command -v tcpdump") {
			t.Errorf("%s: asked %q, want one `command -v tcpdump` on a node", tc.name, asked)
		}
	}
}
