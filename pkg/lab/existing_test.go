package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

func TestShapeMismatch(t *testing.T) {
	read := cluster.Shape{KubeProxyMode: "nftables", DNSServer: "coredns", DNSEndpoints: 2, PodNetworks: []string{"labnet"}, Workers: 2}
	def := scenario.DefaultShape()
	for _, tc := range []struct {
		name string
		edit func(*scenario.Cluster)
		want string
	}{
		{"kube-proxy", func(*scenario.Cluster) {}, "cluster runs kube-proxy nftables; the shape asks for iptables"},
		{"matches", func(c *scenario.Cluster) { c.KubeProxy = "nftables" }, ""},
		{"dns server", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.DNS.Server = "kube-dns" }, "cluster runs DNS server coredns; the shape asks for kube-dns"},
		{"replicas", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.DNS.Replicas = 3 }, "cluster has 2 ready DNS endpoints behind kube-dns; the shape asks for 3 replicas"},
		{"pod network", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.PodNetwork = "calico" }, "cluster runs pod network labnet; the shape asks for calico"},
		{"workers", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.Nodes.Workers = 3 }, "cluster has 2 Ready workers; the shape asks for 3"},
	} {
		c := def
		tc.edit(&c)
		if got := ShapeMismatch(read, c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// fakeExisting is a lab kind cluster in nftables mode as its API shows it;
// its pods succeed as soon as they are created.
func fakeExisting(t *testing.T) *fake.Clientset {
	t.Helper()
	node := func(name string, cp bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if cp {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		n.Status.NodeInfo.KernelVersion = "6.1.0-28-amd64"
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"docker.io/labrun/probe-glibc:4f1c2a9e0b7d"}},
			{Names: []string{"docker.io/labrun/labagent:0123456789ab"}}}
		return n
	}
	cs := fake.NewClientset(
		node("e-control-plane", true), node("e-worker", false), node("e-worker2", false),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
			Data: map[string]string{"config.conf": "kind: KubeProxyConfiguration\nmode: nftables\n"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "labnet", Namespace: "kube-system"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-x", Namespace: "kube-system", Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			},
		},
	)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.33.1"}
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
		return false, nil, nil
	})
	return cs
}

// TestRunOnExistingCluster runs a scenario on a fake existing cluster with
// docker and kind on PATH as scripts that record any call: none happens;
// only the matching shape's plain cells run, the others are not run with
// their reason; env.json records the shape read; counters are "not read"
// (no --allow-privileged), never zero; nothing is left on the cluster.
func TestRunOnExistingCluster(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	for _, tool := range []string{"docker", "kind", "ctr"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + calls + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)

	cs := fakeExisting(t)
	var progress bytes.Buffer
	p := existing.NewForClient(cs, existing.Options{Progress: &progress})
	res, err := Run(context.Background(), RunOptions{Scenario: "testdata/existing.yaml", ResultsDir: t.TempDir(), Provider: p, Progress: &progress})
	t.Logf("progress:\n%s", progress.String())
	if res == nil {
		t.Fatalf("Run: %v", err)
	}
	if b, _ := os.ReadFile(calls); len(b) > 0 {
		t.Errorf("docker, kind or ctr called on an existing cluster:\n%s", b)
	}
	sc, err := scenario.LoadFile("testdata/existing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, c := range sc.Expand() {
		st, ok, err := res.Run.ReadStatus(c.ID)
		if err != nil || !ok {
			t.Fatalf("status of %s: %v %v", c.ID, ok, err)
		}
		var want string
		switch {
		case c.Shape.Cluster.Name == "ipt":
			want = "cluster runs kube-proxy nftables; the shape asks for iptables"
		case c.Mitigations.Has("nodelocaldns"):
			want = "mitigation nodelocaldns changes the cluster"
		case c.UnderEmulator():
			want = "not run without --allow-race-emulator and --allow-privileged"
		case c.Names.Names[0].Kind == "external":
			want = "is answered by the lab upstream"
		}
		if want != "" {
			if st.State != results.NotRun || !strings.Contains(st.Reason, want) {
				t.Errorf("%s: %s %q, want not run: %q", c.ID, st.State, st.Reason, want)
			}
			continue
		}
		ran++
		if st.State == results.NotRun {
			t.Errorf("%s: not run: %s", c.ID, st.Reason)
		}
		counters, ok, err := res.Run.ReadCounters(c.ID)
		if err != nil || !ok || len(counters.Nodes) != 0 || !strings.Contains(counters.NotRead, "needs --allow-privileged") {
			t.Errorf("%s: counters %+v (%v %v), want not read", c.ID, counters, ok, err)
		}
	}
	if ran != 2 {
		t.Errorf("%d cells ran, want 2 (nft × none, single-request-reopen × in-cluster names × bare)", ran)
	}
	for _, c := range res.Analysis.Cells {
		if c.Counters != nil {
			t.Errorf("cell %s: counters analysed as numbers: %+v", c.ID, c.Counters)
		}
	}
	env, _, err := res.Run.ReadEnv()
	if err != nil {
		t.Fatal(err)
	}
	if env.Extra["existing.kubeProxy"] != "nftables" || env.Extra["existing.provider"] != "existing" || env.Docker != "" || env.Kubernetes != "v1.33.1" {
		t.Errorf("env.json: docker %q, kubernetes %q, extra %v", env.Docker, env.Kubernetes, env.Extra)
	}
	if left, err := workload.Leftovers(context.Background(), cs, existing.LabelManaged+"=true"); err != nil || len(left) > 0 {
		t.Errorf("left on the cluster: %v %v", left, err)
	}
	if !strings.Contains(progress.String(), "cleanup: nothing left") {
		t.Error("no final check printed")
	}
	// Only the lab's namespace, its Service and its pods were made.
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "patch" {
			if r := a.GetResource().Resource; r != "namespaces" && r != "services" && r != "pods" {
				t.Errorf("%s %s on an existing cluster", a.GetVerb(), r)
			}
			if a.GetNamespace() != "" && !strings.HasPrefix(a.GetNamespace(), existing.NamespacePrefix) {
				t.Errorf("%s %s in namespace %s", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
			}
		}
	}
}
