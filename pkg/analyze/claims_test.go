package analyze

import (
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const header = "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n"

const baselineYAML = header + `workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

// raceLike gives delays where the race would, with the emulator's drops.
func raceLike(delayedFor func(scenario.Cell) bool) resultstest.Spec {
	return func(c scenario.Cell) (resultstest.Cell, bool) {
		cs := resultstest.Cell{Lookups: 5000}
		if delayedFor(c) {
			cs.Delayed = 0.02
			cs.EmulatorDropped = 100
		}
		return cs, true
	}
}

func analyzeSynthetic(t *testing.T, yaml string, spec resultstest.Spec) *Analysis {
	t.Helper()
	run, err := resultstest.WriteRun(t.TempDir(), "run", yaml, spec)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Load(run)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func verdicts(a *Analysis) map[int]Claim {
	m := map[int]Claim{}
	for _, c := range a.Claims {
		m[c.N] = c
	}
	return m
}

func TestClaimsOnSyntheticRuns(t *testing.T) {
	glibcFixed := func(c scenario.Cell) bool { return c.Backend == "musl" || c.Mitigations.IsNone() }
	tests := []struct {
		name string
		yaml string
		spec resultstest.Spec
		want map[int]Verdict
	}{
		{
			name: "the race as the seeds saw it",
			yaml: baselineYAML,
			spec: raceLike(glibcFixed),
			want: map[int]Verdict{1: Pass, 2: Pass, 3: Pass, 4: NotRun, 5: NotRun, 6: NotRun, 7: Pass, 8: NotRun, 9: NotRun, 10: NotRun, 11: NotRun},
		},
		{
			name: "the opposite: glibc delayed only with single-request-reopen",
			yaml: baselineYAML,
			spec: raceLike(func(c scenario.Cell) bool { return c.Backend == "glibc" && !c.Mitigations.IsNone() }),
			want: map[int]Verdict{1: Fail, 2: Fail, 3: NotRun},
		},
		{
			name: "musl fixed by an option it ignores",
			yaml: baselineYAML,
			spec: raceLike(func(c scenario.Cell) bool { return c.Mitigations.IsNone() }),
			want: map[int]Verdict{1: Pass, 2: Pass, 3: Fail, 7: Pass},
		},
		{
			// delay-aaaa on kind: 1 stray delay (and 1 drop) in 1,200
			// lookups against 32 of 56 without it.
			name: "a fix that leaves a stray delay is a fix, its counter flat",
			yaml: header + "workload: {resolvers: [glibc], mitigations: [none, delay-aaaa]}\nchaos: {raceEmulator: {}}\n",
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				if c.Mitigations.IsNone() {
					return resultstest.Cell{Lookups: 56, Delayed: 32.0 / 56, EmulatorDropped: 32}, true
				}
				return resultstest.Cell{Lookups: 1200, Delayed: 1.0 / 1200, EmulatorDropped: 1}, true
			},
			want: map[int]Verdict{1: Pass, 6: Pass, 7: Pass},
		},
		{
			name: "a counter that rises under a fix is not flat",
			yaml: header + "workload: {resolvers: [glibc], mitigations: [none, delay-aaaa]}\nchaos: {raceEmulator: {}}\n",
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				if c.Mitigations.IsNone() {
					return resultstest.Cell{Lookups: 56, Delayed: 32.0 / 56, EmulatorDropped: 32}, true
				}
				return resultstest.Cell{Lookups: 1200, Delayed: 1.0 / 1200, EmulatorDropped: 40}, true
			},
			want: map[int]Verdict{6: Pass, 7: Fail},
		},
		{
			name: "no delays anywhere: claims 1 fails, fixes inconclusive",
			yaml: baselineYAML,
			spec: raceLike(func(scenario.Cell) bool { return false }),
			want: map[int]Verdict{1: Fail, 2: NotRun, 3: NotRun, 7: NotRun},
		},
		{
			name: "bare kernel with no insert_failed is not under the race",
			yaml: header + "workload: {resolvers: [glibc], mitigations: [none, use-vc]}\n",
			spec: raceLike(func(scenario.Cell) bool { return false }),
			want: map[int]Verdict{1: NotRun, 2: NotRun},
		},
		{
			name: "gRPC: c-ares ignores the option, native honours it",
			yaml: header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, single-request-reopen, grpc-native+single-request-reopen]
chaos: {raceEmulator: {}}
`,
			spec: raceLike(func(c scenario.Cell) bool { return c.Backend == "grpc-ares" }),
			want: map[int]Verdict{4: Pass, 1: NotRun},
		},
		{
			name: "gRPC: native still delayed",
			yaml: header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, single-request-reopen, grpc-native+single-request-reopen]
chaos: {raceEmulator: {}}
`,
			spec: raceLike(func(scenario.Cell) bool { return true }),
			want: map[int]Verdict{4: Fail},
		},
		{
			name: "more lookups in flight per node, more delays",
			yaml: header + `workload:
  load: [{podsPerNode: 1, concurrency: 1}, {podsPerNode: 4, concurrency: 8}]
chaos: {raceEmulator: {}}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				return resultstest.Cell{Lookups: 5000, Delayed: 0.0005 * float64(c.Load.Concurrency*c.Load.PodsPerNode), EmulatorDropped: 5}, true
			},
			want: map[int]Verdict{11: Pass},
		},
		{
			name: "load makes no difference",
			yaml: header + `workload:
  load: [{podsPerNode: 1, concurrency: 1}, {podsPerNode: 4, concurrency: 8}]
chaos: {raceEmulator: {}}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				return resultstest.Cell{Lookups: 5000, Delayed: 0.02 / float64(c.Load.Concurrency), EmulatorDropped: 5}, true
			},
			want: map[int]Verdict{11: Fail},
		},
		{
			name: "nodelocaldns judged for gRPC by its missed deadlines",
			yaml: header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, nodelocaldns]
chaos: {raceEmulator: {}}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs := resultstest.Cell{Lookups: 1000}
				switch { // gRPC alone: 5 s multiples would never show
				case c.Mitigations.IsNone():
					cs.DeadlineExceeded, cs.EmulatorDropped = 0.3, 300
				}
				return cs, true
			},
			want: map[int]Verdict{5: Pass},
		},
		{
			name: "too few lookups at the low load: inconclusive",
			yaml: header + `workload:
  load: [{podsPerNode: 1, concurrency: 1}, {podsPerNode: 4, concurrency: 8}]
chaos: {raceEmulator: {}}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				n := 4
				if c.Load.Concurrency > 1 {
					n = 400
				}
				return resultstest.Cell{Lookups: n, Delayed: 0.5, EmulatorDropped: 5}, true
			},
			want: map[int]Verdict{11: NotRun},
		},
		{
			name: "captures: same port without mitigation, fewer queries with fqdn",
			yaml: header + `workload:
  mitigations: [none, single-request-reopen, fqdn]
chaos: {raceEmulator: {}}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs := resultstest.Cell{Lookups: 2000, Capture: &results.CaptureSummary{CaptureReport: results.CaptureReport{Queries: 10000, Lookups: results.CaptureLookupStats{Count: 1000}}}}
				switch c.MitigationID() {
				case "none":
					cs.Delayed, cs.EmulatorDropped, cs.Capture.SamePortPairs = 0.02, 40, 900
				case "fqdn":
					cs.Capture.Queries, cs.Capture.SamePortPairs = 2000, 800
				}
				return cs, true
			},
			want: map[int]Verdict{8: Pass, 9: Pass, 1: Pass, 2: Pass, 7: Pass},
		},
		{
			name: "a fix whose drop counter still grows",
			yaml: baselineYAML,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, _ := raceLike(glibcFixed)(c)
				cs.EmulatorDropped = 100
				return cs, true
			},
			want: map[int]Verdict{7: Fail},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := analyzeSynthetic(t, tt.yaml, tt.spec)
			got := verdicts(a)
			if len(got) != 11 {
				t.Errorf("%d claims, want 11", len(got))
			}
			for n, want := range tt.want {
				if got[n].Verdict != want {
					t.Errorf("claim %d = %s (%s), want %s", n, got[n].Verdict, got[n].Evidence, want)
				}
				if got[n].Evidence == "" {
					t.Errorf("claim %d has no evidence", n)
				}
			}
		})
	}
}

func TestRunAccountingAndNotRun(t *testing.T) {
	yaml := header + `workload:
  resolvers: [glibc, grpc-ares]
  mitigations: [none, grpc-native, nodelocaldns]
`
	a := analyzeSynthetic(t, yaml, func(c scenario.Cell) (resultstest.Cell, bool) {
		switch c.ID {
		case "default_glibc_none":
			return resultstest.Cell{Lookups: 1000, LoseSamples: 3}, true
		case "default_grpc-ares_none":
			return resultstest.Cell{}, false // the run stopped before it
		}
		return resultstest.Cell{Lookups: 1000}, true
	})
	want := map[string]string{
		"default_glibc_none":                      "incomplete: summary says 500 lookups, file holds 497",
		"default_glibc_grpc-native":               "not-run: not applicable: grpc-native on glibc",
		"default_grpc-ares_none":                  "not-run: no status file",
		"default_grpc-ares_grpc-native":           "complete",
		"default+nodelocaldns_glibc_nodelocaldns": "complete",
	}
	for id, w := range want {
		c := a.Cell(id)
		if c == nil {
			t.Errorf("no cell %s", id)
			continue
		}
		got := string(c.State)
		if c.Reason != "" {
			got += ": " + c.Reason
		}
		state, reason, _ := strings.Cut(w, ": ")
		if string(c.State) != state || !strings.Contains(c.Reason, reason) {
			t.Errorf("%s: %s, want %s", id, got, w)
		}
	}
	if c := a.Cell("default_grpc-ares_grpc-native"); c.Backend != "grpc-native" || c.Stats.Count != 1000 {
		t.Errorf("grpc-ares+grpc-native: backend %s, count %d", c.Backend, c.Stats.Count)
	}
}

func TestComparisonWithBaseline(t *testing.T) {
	a := analyzeSynthetic(t, baselineYAML, raceLike(func(c scenario.Cell) bool { return c.Mitigations.IsNone() }))
	c := a.Cell("default_glibc_single-request-reopen")
	if c.Comparison == nil || c.Comparison.Baseline != "default_glibc_none" {
		t.Fatalf("comparison = %+v", c.Comparison)
	}
	m, p := c.Comparison.MeanRatio, c.Comparison.P99Ratio
	// Without the 2 % of 5 s delays, the mean drops from ~100 ms to ~1.7 ms
	// and the p99 from ~5 s to a few ms.
	if m.Ratio > 0.05 || m.Low > m.Ratio || m.High < m.Ratio || p.Ratio > 0.01 {
		t.Errorf("mean ratio %+v, p99 ratio %+v", m, p)
	}
	if b := a.Cell("default_glibc_none"); b.Comparison != nil {
		t.Errorf("the baseline compared with itself: %+v", b.Comparison)
	}
}

func TestCounterDeltas(t *testing.T) {
	d := CounterDeltas(results.Counters{Nodes: map[string]results.NodeCounters{
		"a": {Before: map[string]uint64{"insert_failed": 5, "clashres": 10}, After: map[string]uint64{"insert_failed": 8, "clashres": 4}},
		"b": {Before: map[string]uint64{"insert_failed": 0}, After: map[string]uint64{"insert_failed": 2},
			EmulatorBefore: &emulator.Record{Counts: emulator.Counts{Dropped: 1}}, EmulatorAfter: &emulator.Record{Counts: emulator.Counts{Dropped: 11}}},
	}})
	if d.Conntrack["insert_failed"] != 5 || d.Conntrack["clashres"] != 0 || strings.Join(d.Reset, ",") != "a:clashres" {
		t.Errorf("deltas = %+v", d)
	}
	if n, which := d.Drops(); n != 10 || which != "emulator dropped" {
		t.Errorf("Drops = %d %s", n, which)
	}
}

func TestStrayStatusFiles(t *testing.T) {
	run, err := resultstest.WriteRun(t.TempDir(), "run", baselineYAML, raceLike(func(scenario.Cell) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.WriteStatus(results.Status{Cell: "old_cell", State: results.Complete}); err != nil {
		t.Fatal(err)
	}
	a, err := Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(a.Stray, ",") != "old_cell" || len(a.Cells) != 4 {
		t.Errorf("stray = %v, cells = %d", a.Stray, len(a.Cells))
	}
}
