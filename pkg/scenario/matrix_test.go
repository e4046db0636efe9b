package scenario

import (
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, yaml string) *Scenario {
	t.Helper()
	s, err := Parse("test.yaml", []byte("apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // "ID" or "ID | not run reason prefix" or "ID ~ ignored"
	}{
		{
			name: "baseline shape",
			yaml: "workload: {resolvers: [glibc, musl], mitigations: [none, single-request-reopen]}\n",
			want: []string{
				"default_glibc_none",
				"default_glibc_single-request-reopen",
				"default_musl_none",
				"default_musl_single-request-reopen ~ single-request-reopen",
			},
		},
		{
			name: "composition is canonical and not applicable cells say why",
			yaml: "workload: {resolvers: [glibc, grpc-ares], mitigations: [single-request-reopen+grpc-native]}\n",
			want: []string{
				"default_glibc_grpc-native+single-request-reopen | not applicable: grpc-native on glibc",
				"default_grpc-ares_grpc-native+single-request-reopen",
			},
		},
		{
			name: "cluster-level mitigations make their own shape, plain first",
			yaml: "workload: {mitigations: [nodelocaldns+single-request, none]}\n",
			want: []string{
				"default_glibc_none",
				"default+nodelocaldns_glibc_nodelocaldns+single-request",
			},
		},
		{
			name: "multi-valued axes appear in the id",
			yaml: "workload:\n  load: [{concurrency: 1}, {concurrency: 8, podsPerNode: 2}]\nchaos: [{}, {raceEmulator: {}}]\nrepeats: 2\n",
			want: []string{
				"default_glibc_none_p1c1r50d1m0s_bare_r1",
				"default_glibc_none_p1c1r50d1m0s_bare_r2",
				"default_glibc_none_p1c1r50d1m0s_emu-5.0-5.5_r1",
				"default_glibc_none_p1c1r50d1m0s_emu-5.0-5.5_r2",
				"default_glibc_none_p2c8r50d1m0s_bare_r1",
				"default_glibc_none_p2c8r50d1m0s_bare_r2",
				"default_glibc_none_p2c8r50d1m0s_emu-5.0-5.5_r1",
				"default_glibc_none_p2c8r50d1m0s_emu-5.0-5.5_r2",
			},
		},
		{
			name: "every cluster axis value is set up by the lab (the host decides the rest)",
			yaml: "clusters: [{name: a, podNetwork: calico}, {name: b, kubeProxy: ipvs}, {name: c, dns: {server: kube-dns}}, {name: d, kubeProxy: nftables}]\nworkload: {mitigations: [autopath]}\n",
			want: []string{
				"a+autopath_glibc_autopath",
				"b+autopath_glibc_autopath",
				"c+autopath_glibc_autopath | not applicable: autopath is a CoreDNS plugin",
				"d+autopath_glibc_autopath",
			},
		},
		{
			name: "random-fully is set up on the lab's own pod network only",
			yaml: "clusters: [{name: a}, {name: k, podNetwork: kube-router}, {name: p, nodeImage: published}]\nworkload: {mitigations: [random-fully]}\n",
			want: []string{
				"a+random-fully_glibc_random-fully",
				"k+random-fully_glibc_random-fully | not set up: random-fully is put on the masquerade rule of the lab's own pod network (podNetwork default); the lab does not rewrite kube-router's",
				"p+random-fully_glibc_random-fully | not set up: random-fully is put on the masquerade rule of the lab's own pod network; the published node image runs kindnet",
			},
		},
		{
			name: "jvm variants take resolv.conf options, not grpc-native; dotnet is named and not run",
			yaml: "workload: {resolvers: [jvm, jvm-nocache, dotnet], mitigations: [none, single-request-reopen, grpc-native]}\n",
			want: []string{
				"default_jvm_none",
				"default_jvm_single-request-reopen",
				"default_jvm_grpc-native | not applicable: grpc-native on jvm",
				"default_jvm-nocache_none",
				"default_jvm-nocache_single-request-reopen",
				"default_jvm-nocache_grpc-native | not applicable: grpc-native on jvm-nocache",
				"default_dotnet_none | back end dotnet not available: neither Debian nor the registries these machines reach serve a .NET runtime",
				"default_dotnet_single-request-reopen | back end dotnet not available",
				"default_dotnet_grpc-native | back end dotnet not available",
			},
		},
		{
			name: "name sets",
			yaml: "workload:\n  names:\n    - [{name: a.b, kind: short}]\n    - [{name: c.d, kind: short}]\n    - [{name: x.lab.example., kind: fqdn}]\n",
			want: []string{
				"default_glibc_none_short",
				"default_glibc_none_short2",
				"default_glibc_none_fqdn",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells := mustLoad(t, tt.yaml).Expand()
			if len(cells) != len(tt.want) {
				t.Fatalf("got %d cells, want %d:\n%s", len(cells), len(tt.want), cellIDs(cells))
			}
			for i, c := range cells {
				want := tt.want[i]
				id, reason, _ := strings.Cut(want, " | ")
				id, ignored, _ := strings.Cut(id, " ~ ")
				if c.ID != id {
					t.Errorf("cell %d: ID = %q, want %q", i, c.ID, id)
				}
				if !strings.HasPrefix(c.NotRun, reason) || (reason == "") != c.Runs() {
					t.Errorf("cell %s: NotRun = %q, want prefix %q", c.ID, c.NotRun, reason)
				}
				if got := strings.Join(c.Ignored, ","); got != ignored {
					t.Errorf("cell %s: Ignored = %q, want %q", c.ID, got, ignored)
				}
			}
		})
	}
}

func TestExpandBackendAndIDsUnique(t *testing.T) {
	s, err := LoadFile("testdata/valid-axes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cells := s.Expand()
	// 2 clusters × (2 plain sets × 2 resolvers + 1 nodelocaldns set × 2) × 2 names × 2 loads × 2 chaos × 2 repeats
	if want := 2 * 6 * 2 * 2 * 2 * 2; len(cells) != want {
		t.Errorf("got %d cells, want %d", len(cells), want)
	}
	seen := map[string]bool{}
	for _, c := range cells {
		if seen[c.ID] {
			t.Errorf("duplicate cell ID %s", c.ID)
		}
		seen[c.ID] = true
		if c.Resolver == "grpc-ares" && c.Mitigations.Has("grpc-native") && c.Backend != "grpc-native" {
			t.Errorf("%s: backend %s, want grpc-native", c.ID, c.Backend)
		}
	}
	if len(Plan(cells)) != 4 {
		t.Errorf("shapes = %d, want 4 (2 clusters × plain/nodelocaldns)", len(Plan(cells)))
	}
}

func TestEstimateWallTime(t *testing.T) {
	s := mustLoad(t, "workload: {resolvers: [glibc, musl], mitigations: [none, grpc-native], load: {duration: 30s}}\n")
	// glibc/none and musl/none run; grpc-native is not applicable to either.
	want := EstimateClusterUp + EstimateClusterDown + 2*(30*time.Second+EstimateCellOverhead)
	if got := EstimateWallTime(s.Expand(), 1); got != want {
		t.Errorf("EstimateWallTime = %v, want %v", got, want)
	}
	// Two at once: the two cells share the time.
	want = EstimateClusterUp + EstimateClusterDown + (30*time.Second + EstimateCellOverhead)
	if got := EstimateWallTime(s.Expand(), 2); got != want {
		t.Errorf("EstimateWallTime two at once = %v, want %v", got, want)
	}
}

func TestLanes(t *testing.T) {
	for _, tc := range []struct {
		want, workers, cells int
		network              string
		lanes                int
		why                  string
	}{
		{0, 2, 4, "", 1, ""}, {1, 2, 4, "default", 1, ""}, {2, 2, 4, "default", 2, ""}, {4, 2, 4, "", 4, ""},
		{4, 2, 3, "default", 3, ""}, // no more lanes than cells
		{4, 3, 9, "default", 2, ""}, // 8 workers at most: 2 lanes of 3
		{2, 5, 9, "default", 1, ""},
		{3, 0, 9, "default", 1, ""}, // cells on the control plane
		{2, 2, 9, "kube-router", 1, "pod network kube-router: its agents act on every pod of the cluster"},
		{2, 2, 9, "calico", 1, "pod network calico: "},
		{1, 2, 9, "weave", 1, ""}, // one asked for: nothing to say
		{2, 2, 9, "published", 1, "the published node image's pod network (kindnet) was never checked"},
	} {
		c := Cluster{Nodes: Nodes{ControlPlanes: 1, Workers: tc.workers}, PodNetwork: tc.network}
		if tc.network == "published" { // the published node image, with its own network
			c.PodNetwork, c.NodeImage = DefaultPodNetwork, "published"
		}
		got, why := Lanes(tc.want, c, tc.cells)
		if got != tc.lanes || !strings.HasPrefix(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("Lanes(%d, %d workers on %q, %d cells) = %d, %q; want %d, %q…", tc.want, tc.workers, tc.network, tc.cells, got, why, tc.lanes, tc.why)
		}
	}
}
