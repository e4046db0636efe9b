package scenario

import (
	"errors"
	"fmt"
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
	if e == nil || e.Profile != "5.0-5.5" || e.Window != DefaultWindow {
		t.Errorf("emulator defaults = %+v", e)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := map[string][]string{
		"invalid-unknown-fields.yaml": {
			"invalid-unknown-fields.yaml:5: metadata.owner: unknown field; valid: name, description",
			"invalid-unknown-fields.yaml:8: clusters[0].kubernetesVersion: unknown field; valid: name, kubernetes, nodeImage, nodes, podNetwork, kubeProxy, dns",
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
		"invalid-expect-types.yaml": {
			"invalid-expect-types.yaml:5: expect.claims: want a mapping, got a list",
			"invalid-expect-types.yaml:7: expect.cells[0].match.speed: unknown field; valid: cluster, podNetwork, kubeProxy, dns, resolver, mitigation, chaos",
			`invalid-expect-types.yaml:8: expect.cells[0].max.p99: duration "soon": want Go duration text such as 60s or 1ms`,
			`invalid-expect-types.yaml:8: expect.cells[0].max.shareAt5s: share "lots": want a fraction from 0 to 1 (0.005) or a percentage (0.5%)`,
			`invalid-expect-types.yaml:8: expect.cells[0].max.timeouts: "1.5": want a whole count (3) or a share of lookups (0.5%)`,
			`invalid-expect-types.yaml:9: expect.cells[0].min.emulatorDrops: want a whole number, got "some"`,
			`invalid-expect-types.yaml:10: expect.cells[1].match: want a mapping of fields, got "glibc"`,
		},
		"invalid-expect.yaml": {
			`invalid-expect.yaml:9: expect.claims.0: unknown claim "0"; valid: a claim number from 1 to 11`,
			`invalid-expect.yaml:10: expect.claims.3: unknown value "passes"; valid: pass, fail, not-run`,
			`invalid-expect.yaml:11: expect.claims.x: unknown claim "x"; valid: a claim number from 1 to 11`,
			`invalid-expect.yaml:13: expect.cells[0].match.mitigation: "[" is not a valid glob pattern; valid: a value, or a pattern with *, ? and [...] (Go's path.Match)`,
			`invalid-expect.yaml:13: expect.cells[0].match.resolver: unknown resolver "java"; valid: glibc, musl, grpc-ares, grpc-native, go, raw, jvm, jvm-nocache, dotnet, or a pattern`,
			`invalid-expect.yaml:15: expect.cells[1].match.chaos: unknown chaos "emu-x"; valid: bare, or a pattern`,
			`invalid-expect.yaml:15: expect.cells[1].match.cluster: unknown cluster "other"; valid: default, or a pattern`,
			`invalid-expect.yaml:15: expect.cells[1].match.mitigation: unknown mitigation "bogus"; valid: none, single-request-reopen,`,
			`invalid-expect.yaml:15: expect.cells[1].match.podNetwork: unknown podNetwork "flannel"; valid: default, kube-router, calico, weave, or a pattern`,
			`invalid-expect.yaml:16: expect.cells[1].max.emulatorDrops: -1 is negative; valid: a count of 0 or more`,
			`invalid-expect.yaml:16: expect.cells[1].max.shareAt5s: 2 is out of range; valid: 0 to 1, or 0% to 100%`,
			`invalid-expect.yaml:16: expect.cells[1].max.timeouts: 101% is out of range; valid: a count of 0 or more, or 0% to 100%`,
			`invalid-expect.yaml:17: expect.cells[2]: bounds nothing; valid: max: and/or min: with any of p50, p99, shareAt5s, hitShare, timeouts, emulatorDrops`,
			`invalid-expect.yaml:19: expect.cells[3].min.p99: min 2s is above max 1s; valid: min at most max`,
			`invalid-expect.yaml:19: expect.cells[3].min.shareAt5s: min 50% is above max 10%; valid: min at most max`,
			`invalid-expect.yaml:20: expect.cells[3].max.hitShare: 1.5 is out of range; valid: 0 to 1, or 0% to 100%`,
			`invalid-expect.yaml:20: expect.cells[3].max.p50: -1s is negative; valid: a duration of 0s or more, such as 100ms`,
		},
		// Selectors are held to the matrix only once the rest is valid.
		"invalid-expect-cells.yaml": {
			`invalid-expect-cells.yaml:9: expect.cells[0].match: kubeProxy=nftables resolver=g* mitigation=*reopen* matches no cell of the scenario; valid: the scenario's cells have kubeProxy iptables; resolver glibc, musl; mitigation none, single-request-reopen, grpc-native`,
			`invalid-expect-cells.yaml:11: expect.cells[1].match: mitigation=grpc-native matches only cells the lab does not run (default_glibc_grpc-native: not applicable: grpc-native on glibc:`,
			`invalid-expect-cells.yaml:14: expect.cells[2].max.emulatorDrops: resolver=glibc matches default_glibc_none, which runs without the race emulator; valid: a selector of cells under chaos.raceEmulator only`,
			`invalid-expect-cells.yaml:14: expect.cells[2].max.hitShare: hitShare is for gRPC calls, but resolver=glibc matches default_glibc_none (back end glibc); valid: a selector of grpc-ares or grpc-native cells only; shareAt5s for the others`,
		},
		// Every kind of problem at once: what did not decode (unknown fields,
		// wrong types, bad scalars) and what did but is invalid. A field that
		// did not decode is not judged again on the zero it was left with
		// (controlPlanes, replicas, rate, window).
		"invalid-mixed.yaml": {
			"invalid-mixed.yaml:1: colour: unknown field; valid: apiVersion, kind, metadata, clusters, workload, chaos, repeats, cellsAtOnce, images, expect",
			"invalid-mixed.yaml:6: metadata.owner: unknown field; valid: name, description",
			`invalid-mixed.yaml:9: clusters[0].nodes.controlPlanes: want a whole number, got "one"`,
			`invalid-mixed.yaml:9: clusters[0].nodes.workers: 11 is out of range; valid: 0 to 10`,
			`invalid-mixed.yaml:10: clusters[0].kubeProxy: unknown value "userspace"; valid: iptables, nftables, ipvs`,
			`invalid-mixed.yaml:11: clusters[0].dns.replicas: want a single value, got a list`,
			`invalid-mixed.yaml:13: workload.resolvers[1]: unknown value "java"; valid: glibc, musl,`,
			`invalid-mixed.yaml:14: workload.mitigations[1]: unknown mitigation "single-request-reopn"; valid: none, single-request-reopen,`,
			`invalid-mixed.yaml:16: workload.load.rate: rate "fast": want N/s, N/m or N`,
			`invalid-mixed.yaml:17: workload.load.duration: 2h0m0s is out of range; valid: more than 0s and at most 1h0m0s`,
			`invalid-mixed.yaml:19: chaos.raceEmulator.profile: unknown value "4.19"; valid: pre-5.0, 5.0-5.5`,
			`invalid-mixed.yaml:19: chaos.raceEmulator.window: duration "soon": want Go duration text such as 60s or 1ms`,
			`invalid-mixed.yaml:20: repeats: 0 is out of range; valid: 1 to 20`,
		},
		// The same in the expect block, a second document, and two list keys
		// on one line said once. cells[0] bounds nothing only because its p99
		// did not decode: not reported. cells[1] matches no cell of the
		// defaulted matrix, but with clusters unreadable that matrix is not
		// what the file meant: not reported either.
		"invalid-mixed-expect.yaml": {
			`invalid-mixed-expect.yaml:3: metadata.name: "Mixed_Expect" is not a lower-case DNS label`,
			`invalid-mixed-expect.yaml:4: clusters: want a list, got "default"`,
			`invalid-mixed-expect.yaml:6: workload.names[0].name: "bad name" is not a DNS name`,
			`invalid-mixed-expect.yaml:8: expect.claims: want a single value as key, got a list`,
			`invalid-mixed-expect.yaml:8: expect.claims.12: unknown claim "12"; valid: a claim number from 1 to 11`,
			`invalid-mixed-expect.yaml:8: expect.claims.3: unknown value "maybe"; valid: pass, fail, not-run`,
			`invalid-mixed-expect.yaml:10: expect.cells[0].match.colour: unknown field; valid: cluster, podNetwork,`,
			`invalid-mixed-expect.yaml:11: expect.cells[0].max.p99: duration "soon": want Go duration text such as 60s or 1ms`,
			`invalid-mixed-expect.yaml:14: more than one YAML document; want one Scenario per file`,
		},
		// strconv reads "NaN", which no comparison puts out of range.
		"invalid-nan.yaml": {
			`invalid-nan.yaml:5: workload.load.rate: NaN/s is out of range; valid: more than 0 and at most 10000/s`,
			`invalid-nan.yaml:7: chaos.raceEmulator.probability: NaN is out of range; valid: 0 to 1`,
			`invalid-nan.yaml:10: expect.cells[0].max.hitShare: NaN is out of range; valid: 0 to 1, or 0% to 100%`,
			`invalid-nan.yaml:10: expect.cells[0].max.shareAt5s: NaN is out of range; valid: 0 to 1, or 0% to 100%`,
			`invalid-nan.yaml:10: expect.cells[0].max.timeouts: NaN% is out of range; valid: a count of 0 or more, or 0% to 100%`,
		},
		"invalid-yaml.yaml": {
			"invalid-yaml.yaml:5: not valid YAML: mapping values are not allowed in this context",
		},
		"invalid-node-image.yaml": {
			`invalid-node-image.yaml:7: clusters[0].nodeImage: unknown value "kindest"; valid: built, published`,
			`invalid-node-image.yaml:10: clusters[1].kubernetes: "v1.36.1" with nodeImage: published, whose kindest/node runs v1.37.0; valid: v1.37.0 (or leave it out), or nodeImage: built for v1.36.1`,
			`invalid-node-image.yaml:11: clusters[1].podNetwork: "kube-router" with nodeImage: published, which runs kind's own pod network (kindnet); valid: default (or leave it out), or nodeImage: built`,
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
			for i := 1; i < len(probs); i++ {
				if probs[i].Line < probs[i-1].Line || probs[i] == probs[i-1] {
					t.Errorf("problems %d and %d out of order or repeated:\n%s\n%s", i-1, i, probs[i-1], probs[i])
				}
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
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
}

// The YAML library's own lines are off by one for its parser's errors and
// missing for its reader's: each problem must still point at its line.
func TestParseNotYAMLLines(t *testing.T) {
	for in, want := range map[string]string{
		"a: b: c\n":                   "f.yaml:1: not valid YAML: mapping values are not allowed in this context",
		"a: 1\nb: x: y\n":             "f.yaml:2: not valid YAML: mapping values are not allowed in this context",
		"]\n":                         "f.yaml:1: not valid YAML: did not find expected node content",
		"a: 1\n]\n":                   "f.yaml:2: not valid YAML: did not find expected key",
		"a: 1\nb: 2\n- c\n":           "f.yaml:3: not valid YAML: did not find expected key",
		"a: 1\nb: [1,\n":              "f.yaml:2: not valid YAML: did not find expected node content",
		"a: 1\n\n# \xff\n":            "f.yaml:3: not valid YAML: invalid leading UTF-8 octet",
		"a: 1\r\nb: 2\r\nc: \x01\r\n": "f.yaml:3: not valid YAML: control characters are not allowed",
		"a: 1\rb: 2\rc: \x01\r":       "f.yaml:3: not valid YAML: control characters are not allowed",
		"a: 1\nb: *x\n":               "f.yaml:2: not valid YAML: unknown anchor 'x' referenced",
	} {
		_, err := Parse("f.yaml", []byte(in))
		var probs Problems
		if !errors.As(err, &probs) || err.Error() != want {
			t.Errorf("Parse(%q) = %v, want %s", in, err, want)
		}
	}
}

// Aliases can make a small file stand for an enormous scenario (here 500
// lists of 500 names, 750,000 values): the loader stops at maxValues and
// says so, instead of taking hours on a larger file.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: bomb}\nx: &n [")
	for i := range 500 {
		fmt.Fprintf(&b, "{name: n%d, kind: short},", i)
	}
	b.WriteString("]\nworkload:\n  names: [")
	for range 500 {
		b.WriteString("*n,")
	}
	b.WriteString("]\n")
	_, err := Parse("f.yaml", []byte(b.String()))
	want := "f.yaml:4: more than 100000 values; aliases (*name) repeating values too often?\n" +
		"f.yaml:4: x: unknown field; valid: apiVersion, kind, metadata, clusters, workload, chaos, repeats, cellsAtOnce, images, expect"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want only\n%s", err, want)
	}
}
