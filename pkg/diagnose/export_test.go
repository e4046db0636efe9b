package diagnose

import (
	"context"
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/scenario"
)

// Every exported scenario loads with the lab's own loader (defaults,
// validation) and carries the detected shape.
func TestExportScenario(t *testing.T) {
	for _, tc := range []struct {
		files   []string
		want    []string
		profile string
		sets    []string
	}{
		{[]string{"cluster/kind-lab.yaml"}, []string{"podNetwork: default", "kubeProxy: iptables", "server: coredns, replicas: 2", "workers: 2"}, "5.0-5.5",
			[]string{"none", "single-request-reopen", "use-vc", "nodelocaldns"}},
		{[]string{"cluster/eks-old.yaml"}, []string{"Not reproduced: the cluster runs aws-vpc-cni", "kernel 4.14.355-275.570.amzn2.x86_64 drops every clash"}, "pre-5.0",
			[]string{"none", "single-request-reopen", "use-vc", "nodelocaldns"}},
		{[]string{"cluster/kind-lab.yaml", "nodelocal/upstream.yaml"}, []string{"already runs NodeLocal DNSCache"}, "5.0-5.5",
			[]string{"none", "single-request-reopen", "use-vc", "nodelocaldns"}},
	} {
		f, err := Gather(context.Background(), fakeCluster(t, tc.files...))
		if err != nil {
			t.Fatal(err)
		}
		out := ExportScenario("ab12", f)
		for _, want := range append(tc.want, "kind shares this host's kernel") {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: the scenario lacks %q:\n%s", tc.files, want, out)
			}
		}
		s, err := scenario.Parse("exported.yaml", out)
		if err != nil {
			t.Fatalf("%v: the exported scenario does not load: %v\n%s", tc.files, err, out)
		}
		if sets := s.Workload.Mitigations; !slices.Equal(sets, tc.sets) {
			t.Errorf("%v: mitigation sets %v, want %v", tc.files, s.Workload.Mitigations, tc.sets)
		}
		if len(s.Chaos) != 2 || s.Chaos[1].RaceEmulator == nil || s.Chaos[1].RaceEmulator.Profile != tc.profile {
			t.Errorf("%v: chaos %+v, want the bare kernel and profile %s", tc.files, s.Chaos, tc.profile)
		}
	}
}

func TestExportScenarioAutopath(t *testing.T) {
	auto := readCorefile(t, "autopath.Corefile")
	f := Facts{Kubernetes: "v1.30.0", KubeProxy: KubeProxy{Mode: "ipvs"}, DNS: dns(3), CoreDNS: &auto, Nodes: nodes("5.4.0", "5.4.0", "5.4.0")}
	out := ExportScenario("cd34", f)
	s, err := scenario.Parse("exported.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c := s.Clusters[0]; c.KubeProxy != "ipvs" || c.DNS.Replicas != 3 || c.Nodes.Workers != 3 {
		t.Errorf("shape: %+v", c)
	}
	if !strings.Contains(string(out), "mitigations: [autopath, autopath+single-request-reopen") {
		t.Errorf("autopath sets:\n%s", out)
	}
}
