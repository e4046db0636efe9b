package existing

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing/existingtest"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// mutations are the API calls that change something.
func mutations(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}
	return out
}

func TestReadShape(t *testing.T) {
	cs := existingtest.Cluster(existingtest.PodsRun)
	s, err := ReadShape(context.Background(), cs, "", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if s.KubeProxyMode != "nftables" || s.DNSServer != "coredns" || s.DNSEndpoints != 2 || s.DNSVIP != "10.96.0.10" ||
		strings.Join(s.PodNetworks, ",") != "labnet" || s.Workers != 2 || s.ControlPlanes != 1 || s.Kubernetes != scenario.DefaultKubernetes {
		t.Errorf("shape %+v", s)
	}
	if s.LabImages["probe-glibc"] != "labrun/probe-glibc:4f1c2a9e0b7d" || s.LabImages["labagent"] != "labrun/labagent:0123456789ab" {
		t.Errorf("lab images %v", s.LabImages)
	}
	if m := mutations(cs); len(m) > 0 {
		t.Errorf("reading the shape changed the cluster: %v", m)
	}
	f := s.Facts()
	if f["kubeProxy"] != "nftables" || f["provider"] != "existing" || f["kernel.lab-worker"] != "6.1.0-28-amd64" {
		t.Errorf("facts %v", f)
	}
}

func TestResolveImagesRegistry(t *testing.T) {
	got := resolveImages([]string{"reg.example:5000/labrun/probe-musl:abc"}, "reg.example:5000/", "v1")
	if got["probe-musl"] != "reg.example:5000/labrun/probe-musl:abc" || got["probe-glibc"] != "reg.example:5000/labrun/probe-glibc:v1" {
		t.Errorf("%v", got)
	}
	if got := resolveImages(nil, "", "latest"); len(got) != 0 {
		t.Errorf("no registry, no node image: %v", got)
	}
}

// TestCreateUnprivileged: without --allow-privileged the lab makes its
// namespace and Service only, labelled with the run; node commands are
// refused with a NodeAccessError; Delete leaves nothing and says so.
func TestCreateUnprivileged(t *testing.T) {
	ctx := context.Background()
	cs := existingtest.Cluster(existingtest.PodsRun)
	var progress bytes.Buffer
	p := NewForClient(cs, Options{Progress: &progress})
	spec := cluster.DefaultSpec()
	spec.Name, spec.Run = "labrun-default", "baseline-20250101-120000"
	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(mutations(cs), ", "), "create namespaces, create services"; got != want {
		t.Errorf("made %s, want %s", got, want)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "labrun-baseline-20250101-120000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels[workload.LabelRun] != spec.Run || ns.Labels[LabelManaged] != "true" || ns.Labels["pod-security.kubernetes.io/enforce"] != "" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
	a := c.Adopted
	if a == nil || a.Namespace != ns.Name || a.RaceEmulator || a.PullPolicy != corev1.PullIfNotPresent || a.LabService != LabService {
		t.Fatalf("adopted %+v", a)
	}
	if len(c.Nodes) != 2 || c.Nodes[0].Name != "lab-worker" || c.Nodes[1].Role != "worker" {
		t.Errorf("nodes %+v: want the two workers", c.Nodes)
	}
	_, err = c.Exec(ctx, "lab-worker", "cat", "/proc/net/stat/nf_conntrack")
	if !cluster.IsNodeAccess(err) || cluster.NotRead(err) != "not read: "+NeedsPrivileged {
		t.Errorf("node command without --allow-privileged: %v", err)
	}
	if names, _ := p.List(ctx); len(names) != 1 {
		t.Errorf("List %v", names)
	}
	if err := p.Delete(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); err == nil {
		t.Error("namespace still there")
	}
	if !strings.Contains(progress.String(), "cleanup: nothing left (namespace labrun-baseline-20250101-120000 deleted") {
		t.Errorf("no final check in %q", progress.String())
	}
	for _, m := range mutations(cs) {
		if strings.HasPrefix(m, "delete ") && m != "delete namespaces" {
			t.Errorf("deleted something else: %s", m)
		}
	}
}

// TestCreatePrivileged: with --allow-privileged a node pod per probed node
// (privileged, hostNetwork, hostPID, with a deadline); node commands are
// pod execs, iptables ones in the tools container.
func TestCreatePrivileged(t *testing.T) {
	ctx := context.Background()
	cs := existingtest.Cluster(existingtest.PodsRun)
	p := NewForClient(cs, Options{AllowPrivileged: true, AllowRaceEmulator: true})
	var execs []string
	p.exec = func(_ context.Context, ns, pod, container string, _ io.Reader, argv []string) ([]byte, error) {
		execs = append(execs, ns+"/"+pod+"/"+container+": "+strings.Join(argv, " "))
		return []byte("ok"), nil
	}
	spec := cluster.DefaultSpec()
	spec.Name, spec.Run = "labrun-default", "r1"
	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods("labrun-r1").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("node pods: %v %v", pods, err)
	}
	for _, pod := range pods.Items {
		s := pod.Spec
		if !s.HostNetwork || !s.HostPID || s.ActiveDeadlineSeconds == nil || len(s.Containers) != 2 ||
			!*s.Containers[0].SecurityContext.Privileged || s.Containers[0].Image != "labrun/probe-glibc:4f1c2a9e0b7d" ||
			s.Containers[1].Image != "labrun/labagent:0123456789ab" || pod.Labels[workload.LabelRun] != "r1" {
			t.Errorf("node pod %s: %+v", pod.Name, s)
		}
	}
	if !c.Adopted.RaceEmulator {
		t.Error("race emulator not allowed")
	}
	if _, err := c.Exec(ctx, "lab-worker2", "cat", "/proc/1/stat"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "lab-worker", "sh", "-c", "iptables-nft-save -t raw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "lab-control-plane", "true"); !cluster.IsNodeAccess(err) {
		t.Errorf("a node the lab does not probe: %v", err)
	}
	want := []string{"labrun-r1/labrun-node-1/node: cat /proc/1/stat", "labrun-r1/labrun-node-0/tools: sh -c iptables-nft-save -t raw"}
	if strings.Join(execs, "\n") != strings.Join(want, "\n") {
		t.Errorf("execs %q, want %q", execs, want)
	}
	ns, _ := cs.CoreV1().Namespaces().Get(ctx, "labrun-r1", metav1.GetOptions{})
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
}

// TestCreateFailureDeletes: a node pod that cannot start leaves nothing.
func TestCreateFailureDeletes(t *testing.T) {
	ctx := context.Background()
	cs := existingtest.Cluster(existingtest.PodsRun)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: NodeContainer, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: "bad"}}}}
		return false, nil, nil
	})
	p := NewForClient(cs, Options{AllowPrivileged: true})
	spec := cluster.DefaultSpec()
	spec.Name, spec.Run = "labrun-default", "r2"
	if _, err := p.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), "InvalidImageName") {
		t.Fatalf("Create: %v", err)
	}
	if left, _ := workload.Leftovers(ctx, cs, workload.LabelRun+"=r2"); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	cs := existingtest.Cluster(existingtest.PodsRun)
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "labrun-a", Labels: labels("a")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "labrun-b", Labels: labels("b")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "users-own"}},
	} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := Sweep(ctx, cs, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 lab namespace(s) deleted (labrun-a, labrun-b)") || !strings.Contains(out.String(), "nothing left") {
		t.Errorf("output %q", out.String())
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "users-own", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's namespace: %v", err)
	}
}

func TestContainerFor(t *testing.T) {
	if ContainerFor([]string{"cat", "/proc/1/stat", "/proc/net/stat/nf_conntrack"}) != NodeContainer ||
		ContainerFor([]string{"sh", "-c", "iptables-legacy-save -t mangle"}) != ToolsContainer {
		t.Error("routing")
	}
}

// TestCreateReusesOnlyTheRunsNamespace: with --retain or --resume the run's
// namespace may exist already. Create reuses it when it carries the lab's
// labels of this run (the pods left in it replaced, its PodSecurity level
// set), and refuses any other namespace of that name, leaving it as it is.
func TestCreateReusesOnlyTheRunsNamespace(t *testing.T) {
	const run = "r3"
	for _, tc := range []struct {
		name   string
		labels map[string]string // of a namespace labrun-r3 already there; nil: none is
		want   string            // in Create's error; "": it succeeds
	}{
		{name: "none there", labels: nil},
		{name: "left by this run", labels: labels(run)},
		{name: "another run's", labels: labels("r4"), want: "namespace labrun-r3 exists but is not the lab's namespace of run r3"},
		{name: "the user's", labels: map[string]string{"team": "dns"}, want: "lacks the labels labrun.dev/existing=true, labrun.dev/run=r3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cs := existingtest.Cluster(existingtest.PodsRun)
			if tc.labels != nil {
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labrun-" + run, Labels: tc.labels}}
				if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				// What the earlier attempt left: a node pod and the Service.
				stale := NodePod(ns.Name, tc.labels[workload.LabelRun], 0, "lab-worker", map[string]string{"probe-glibc": "labrun/probe-glibc:old"})
				if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, stale, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := cs.CoreV1().Services(ns.Name).Create(ctx, labService(ns.Name, run), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			var progress bytes.Buffer
			p := NewForClient(cs, Options{AllowPrivileged: true, Progress: &progress})
			spec := cluster.DefaultSpec()
			spec.Name, spec.Run = "labrun-default", run
			_, err := p.Create(ctx, spec)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Create: %v, want %q", err, tc.want)
				}
				ns, gerr := cs.CoreV1().Namespaces().Get(ctx, "labrun-"+run, metav1.GetOptions{})
				if gerr != nil || len(ns.Labels) != len(tc.labels) {
					t.Errorf("the namespace that is not the lab's changed: %v %v", ns, gerr)
				}
				if pods, _ := cs.CoreV1().Pods("labrun-"+run).List(ctx, metav1.ListOptions{}); len(pods.Items) != 1 {
					t.Errorf("pods in the namespace that is not the lab's: %d, want the 1 it had", len(pods.Items))
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			ns, err := cs.CoreV1().Namespaces().Get(ctx, "labrun-"+run, metav1.GetOptions{})
			if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" || ns.Labels[workload.LabelRun] != run {
				t.Errorf("namespace %v: %v", ns, err)
			}
			pods, err := cs.CoreV1().Pods("labrun-"+run).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) != 2 {
				t.Fatalf("node pods %v: %v", pods, err)
			}
			for _, pod := range pods.Items {
				if img := pod.Spec.Containers[0].Image; img != "labrun/probe-glibc:4f1c2a9e0b7d" {
					t.Errorf("node pod %s runs %s: the earlier attempt's pod was kept", pod.Name, img)
				}
			}
			how := map[bool]string{true: "reused", false: "created"}[tc.labels != nil]
			if !strings.Contains(progress.String(), "namespace labrun-r3 "+how) {
				t.Errorf("progress %q, want %q", progress.String(), how)
			}
		})
	}
}
