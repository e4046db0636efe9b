package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid-*.yaml test files (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := LoadFile(f)
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			// The resolved form must load again to the same cells.
			out, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(f+" (resolved)", out)
			if err != nil {
				t.Fatalf("resolved scenario does not load:\n%s\n%v", out, err)
			}
			if a, b := cellIDs(s.Expand()), cellIDs(again.Expand()); a != b {
				t.Errorf("resolved scenario expands differently:\n%s\nvs\n%s", a, b)
			}
		})
	}
}

func cellIDs(cells []Cell) string {
	ids := make([]string, len(cells))
	for i, c := range cells {
		ids[i] = c.ID
	}
	return strings.Join(ids, "\n")
}

func TestDefaults(t *testing.T) {
	s, err := LoadFile("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Clusters[0]
	if c.Name != "default" || c.Kubernetes != DefaultKubernetes || c.Nodes != (Nodes{1, 2}) ||
		c.PodNetwork != "default" || c.KubeProxy != "iptables" || c.DNS != (DNS{"coredns", 2}) {
		t.Errorf("cluster defaults = %+v", c)
	}
	l := s.Workload.Load[0]
	if l != (Load{PodsPerNode: 1, Concurrency: 4, Rate: 50, Duration: Duration(60 * time.Second)}) {
		t.Errorf("load defaults = %+v", l)
	}
	if len(s.Chaos) != 1 || s.Chaos[0].RaceEmulator != nil || s.Repeats != 1 {
		t.Errorf("chaos/repeats defaults = %+v, %d", s.Chaos, s.Repeats)
	}

	// Explicit zeros are kept; the emulator gets its profile and window.
	s, err = LoadFile("testdata/valid-axes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Clusters[0].Nodes.Workers; w != 0 {
		t.Errorf("workers: 0 was overwritten with %d", w)
	}
	s, err = LoadFile("testdata/valid-single-forms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := s.Chaos[0].RaceEmulator
	if e == nil || e.Profile != "5.0-5.5" || e.Window != DefaultWindow || e.DropProbability(2) != 0.5 {
		t.Errorf("emulator defaults = %+v", e)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := map[string][]string{
		"invalid-unknown-fields.yaml": {
			"invalid-unknown-fields.yaml:5: metadata.owner: unknown field; valid: name, description",
			"invalid-unknown-fields.yaml:8: clusters[0].kubernetesVersion: unknown field; valid: name, kubernetes, nodes, podNetwork, kubeProxy, dns",
			"invalid-unknown-fields.yaml:10: workload.resolver: unknown field; valid: resolvers, mitigations, names, load",
			"invalid-unknown-fields.yaml:11: workload.load.seconds: unknown field; valid: podsPerNode, concurrency, rate, duration",
			"invalid-unknown-fields.yaml:13: repeats: written twice (first on line 12); valid: each field once",
		},
		"invalid-types.yaml": {
			"invalid-types.yaml:6: clusters: want a list, got a mapping",
			`invalid-types.yaml:8: workload.resolvers: want a list, got "glibc"`,
			`invalid-types.yaml:10: workload.load.concurrency: want a whole number, got "many"`,
			`invalid-types.yaml:11: workload.load.rate: rate "fast": want N/s, N/m or N`,
			`invalid-types.yaml:12: workload.load.duration: duration "10": want Go duration text such as 60s or 1ms`,
			"invalid-types.yaml:13: repeats: want a single value, got a list",
		},
		"invalid-yaml.yaml": {
			"invalid-yaml.yaml:5: not valid YAML: mapping values are not allowed in this context",
		},
		"invalid-values.yaml": {
			`invalid-values.yaml:1: apiVersion: unsupported version "labrun.dev/v1alpha2"; valid: labrun.dev/v1alpha1`,
			`invalid-values.yaml:4: metadata.name: "Bad_Name" is not a lower-case DNS label of at most 40 characters; valid: e.g. baseline, grpc-ares`,
			`invalid-values.yaml:7: clusters[0].kubernetes: unknown value "v1.20.0"; valid: v1.36.1`,
			`invalid-values.yaml:8: clusters[0].nodes.controlPlanes: 0 is out of range; valid: 1 to 3`,
			`invalid-values.yaml:8: clusters[0].nodes.workers: 11 is out of range; valid: 0 to 10`,
			`invalid-values.yaml:9: clusters[0].podNetwork: unknown value "flannel"; valid: default, kube-router, calico, weave`,
			`invalid-values.yaml:10: clusters[0].kubeProxy: unknown value "userspace"; valid: iptables, nftables, ipvs`,
			`invalid-values.yaml:11: clusters[0].dns.replicas: 0 is out of range; valid: 1 to 10`,
			`invalid-values.yaml:11: clusters[0].dns.server: unknown value "bind"; valid: coredns, kube-dns, dnsmasq-coredns`,
			`invalid-values.yaml:12: clusters[1].name: "default" names two clusters; valid: a name used once`,
			`invalid-values.yaml:14: workload.resolvers[1]: unknown value "java"; valid: glibc, musl, grpc-ares, grpc-native, go, raw`,
			`invalid-values.yaml:14: workload.resolvers[2]: "glibc" is listed twice; valid: each back end once`,
			`invalid-values.yaml:17: workload.mitigations[1]: unknown mitigation "bogus"; valid: none, single-request-reopen,`,
			`invalid-values.yaml:19: workload.mitigations[3]: "single-request-reopen+grpc-native" is the same set as an earlier entry; valid: each set once`,
			`invalid-values.yaml:20: workload.mitigations[4]: "none" cannot be combined with other mitigations; valid: none,`,
			`invalid-values.yaml:22: workload.names[0].name: "api.lab.example" is of kind fqdn but lacks the trailing dot; valid: api.lab.example.`,
			`invalid-values.yaml:23: workload.names[1].name: "bad name" is not a DNS name; valid: labels of letters, digits, - and _, joined by dots`,
			`invalid-values.yaml:24: workload.names[2].kind: unknown value "nearby"; valid: short, external, fqdn`,
			`invalid-values.yaml:25: workload.load.concurrency: 2000 is out of range; valid: 1 to 1000`,
			`invalid-values.yaml:25: workload.load.duration: 2h0m0s is out of range; valid: more than 0s and at most 1h0m0s`,
			`invalid-values.yaml:25: workload.load.podsPerNode: 0 is out of range; valid: 1 to 50`,
			`invalid-values.yaml:25: workload.load.rate: 0/s is out of range; valid: more than 0 and at most 10000/s`,
			`invalid-values.yaml:27: chaos.raceEmulator.probability: 1.5 is out of range; valid: 0 to 1`,
			`invalid-values.yaml:27: chaos.raceEmulator.profile: unknown value "4.19"; valid: pre-5.0, 5.0-5.5`,
			`invalid-values.yaml:27: chaos.raceEmulator.window: 0s is out of range; valid: more than 0s and at most 1s`,
			`invalid-values.yaml:28: repeats: 0 is out of range; valid: 1 to 20`,
			`invalid-values.yaml:29: images.mirror: "https://registry.example/path" is not a registry HOST[:PORT]; valid: e.g. registry.example:5000`,
		},
	}
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d invalid-*.yaml files but %d expectations: every file needs its messages", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", name))
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("LoadFile error = %v, want Problems", err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(want) {
				t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), err)
			}
			for i := range min(len(got), len(want)) {
				if !strings.HasPrefix(got[i], "testdata/"+want[i]) {
					t.Errorf("problem %d:\n got %s\nwant testdata/%s", i, got[i], want[i])
				}
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want ErrNotExist", err)
	}
}

func TestParseEmptyAndMultiDoc(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "f.yaml: empty file; want a Scenario",
		"kind: Scenario\n---\na: 1\n": "f.yaml:2: more than one YAML document",
	} {
		_, err := Parse("f.yaml", []byte(in))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
}
