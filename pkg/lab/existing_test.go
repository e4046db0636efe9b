package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/cluster/existing/existingtest"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

func TestShapeMismatch(t *testing.T) {
	read := cluster.Shape{KubeProxyMode: "nftables", DNSServer: "coredns", DNSEndpoints: 2, PodNetworks: []string{"labnet"},
		Workers: 2, ControlPlanes: 1, Kubernetes: "v1.36.1"}
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
		{"published node on labnet", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.NodeImage = "published" },
			"cluster runs pod network labnet; the shape asks for kindnet (kind's own, as in the published node image)"},
		{"workers", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.Nodes.Workers = 3 }, "cluster has 2 Ready workers; the shape asks for 3"},
		{"kubernetes", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; pinVersion(c, "v1.35.0") }, "cluster runs Kubernetes v1.36.1; the shape asks for v1.35.0"},
		{"kubernetes patch", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; pinVersion(c, "v1.36.10") }, "cluster runs Kubernetes v1.36.1; the shape asks for v1.36.10"},
		{"kubernetes minor", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; pinVersion(c, "1.36") }, ""},
		{"kubernetes a default", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.Kubernetes = "v1.35.0" }, ""},
		{"control planes", func(c *scenario.Cluster) {
			c.KubeProxy = "nftables"
			c.Nodes.ControlPlanes, c.Pinned.ControlPlanes = 3, true
		}, "cluster has 1 Ready control planes; the shape asks for 3"},
		{"control planes a default", func(c *scenario.Cluster) { c.KubeProxy = "nftables"; c.Nodes.ControlPlanes = 3 }, ""},
	} {
		c := def
		tc.edit(&c)
		if got := ShapeMismatch(read, c); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// pinVersion is a shape whose file wrote kubernetes: v.
func pinVersion(c *scenario.Cluster, v string) {
	c.Kubernetes, c.Pinned.Kubernetes = v, true
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

	cs := existingtest.Cluster(existingtest.PodsSucceed)
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
	if env.Extra["existing.kubeProxy"] != "nftables" || env.Extra["existing.provider"] != "existing" || env.Docker != "" || env.Kubernetes != scenario.DefaultKubernetes {
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

func TestSameVersion(t *testing.T) {
	for _, tc := range []struct {
		found, want string
		same        bool
	}{
		{"v1.36.1", "v1.36.1", true},
		{"v1.36.1+k3s1", "v1.36.1", true},
		{"v1.36.1-eks-4f1c2a", "v1.36.1", true},
		{"v1.36.1", "v1.36", true},
		{"v1.36.10", "v1.36.1", false},
		{"v1.36.1", "v1.3", false},
		{"v1.35.4", "v1.36.1", false},
		{"", "v1.36.1", false},
	} {
		if got := sameVersion(tc.found, tc.want); got != tc.same {
			t.Errorf("sameVersion(%q, %q) = %v, want %v", tc.found, tc.want, got, tc.same)
		}
	}
}

// TestRunOnExistingClusterParallel: an existing cluster is one cluster, so
// --parallel above 1 is refused as bad input before anything is read or
// made; 1 and auto run its shapes (two that match it here) one after
// another.
func TestRunOnExistingClusterParallel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "two.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: two}
clusters:
  - {name: n1, kubeProxy: nftables}
  - {name: n2, kubeProxy: nftables}
workload:
  names: [{name: kubernetes.default, kind: short}]
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		parallel int
		want     string // in Run's error, which wraps ErrBadInput; "": it runs
	}{
		{"two", 2, "--parallel 2: an existing cluster is one cluster, whose shapes run one after another in the run's namespace; want 1"},
		{"eight", 8, "--parallel 8: an existing cluster is one cluster"},
		{"one", 1, ""},
		{"auto", ParallelAuto, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := existingtest.Cluster(existingtest.PodsSucceed)
			dir := t.TempDir()
			var progress bytes.Buffer
			p := existing.NewForClient(cs, existing.Options{})
			res, err := Run(context.Background(), RunOptions{Scenario: file, ResultsDir: dir, Provider: p, Parallel: tc.parallel,
				Progress: &progress, machine: bigMachine})
			if tc.want == "" {
				// The fake's probes log nothing: the cells end incomplete.
				if res == nil || errors.Is(err, ErrBadInput) {
					t.Fatalf("Run: %v", err)
				}
				if !strings.Contains(progress.String(), "2 to run on 2 cluster(s); estimated") {
					t.Errorf("not one shape after another:\n%s", progress.String())
				}
				return
			}
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want bad input %q", err, tc.want)
			}
			if len(cs.Actions()) > 0 {
				t.Errorf("the refused run called the API server: %v", cs.Actions())
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("the refused run left %v", entries)
			}
		})
	}
}
