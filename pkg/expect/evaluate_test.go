package expect

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const header = "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n"

const libcYAML = header + `workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {}}
expect:
  claims: {"1": pass, "2": pass, "3": fail}
  cells:
    - match: {resolver: glibc, mitigation: single-request-reopen}
      max: {shareAt5s: 0, p99: 100ms, emulatorDrops: 0}
    - match: {mitigation: none}
      min: {shareAt5s: 1%}
      max: {timeouts: 0}
`

const grpcYAML = header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, grpc-native+single-request-reopen]
chaos: {raceEmulator: {}}
expect:
  claims: {"4": pass}
  cells:
    - match: {mitigation: none}
      min: {hitShare: 10%}
      max: {timeouts: 50%, p50: 1ms}
    - match: {mitigation: "grpc-native*"}
      max: {hitShare: 0.5%}
`

// raceLike: the race as the seeds saw it; glibc fixed by
// single-request-reopen, musl not; gRPC none cells miss deadlines.
func raceLike(c scenario.Cell) (resultstest.Cell, bool) {
	cs := resultstest.Cell{Lookups: 4000}
	switch {
	case c.Backend == "grpc-ares":
		cs.DeadlineExceeded, cs.EmulatorDropped = 0.3, 300
	case c.Backend == "musl" || c.Mitigations.IsNone():
		cs.Delayed, cs.EmulatorDropped = 0.02, 100
	}
	return cs, true
}

func evaluate(t *testing.T, yaml string, spec resultstest.Spec) []Result {
	t.Helper()
	run, err := resultstest.WriteRun(t.TempDir(), "run", yaml, spec)
	if err != nil {
		t.Fatal(err)
	}
	a, err := analyze.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := run.ReadScenario()
	if err != nil {
		t.Fatal(err)
	}
	return Evaluate(sc.Expect, a)
}

// line is a result as the tests compare it: NAME @CELL: VERDICT MEASURED.
func line(r Result) string {
	s := r.Name
	if r.Cell != "" {
		s += " @" + r.Cell
	}
	return fmt.Sprintf("%s: %s %s", s, r.Verdict, r.Measured)
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		spec resultstest.Spec
		want []string // every result, in order
		// wantReason: a substring of some result's reason, by line
		wantReason map[string]string
	}{
		{
			name: "the race as expected, but claim 3 passes where the file wants it to fail",
			yaml: libcYAML, spec: raceLike,
			want: []string{
				"claim 1: pass: met pass",
				"claim 2: pass: met pass",
				"claim 3: fail: broken pass",
				"resolver=glibc mitigation=single-request-reopen: p99 <= 100ms @default_glibc_single-request-reopen: met 4.",
				"resolver=glibc mitigation=single-request-reopen: shareAt5s <= 0% @default_glibc_single-request-reopen: met 0%",
				"resolver=glibc mitigation=single-request-reopen: emulatorDrops <= 0 @default_glibc_single-request-reopen: met 0",
				"mitigation=none: timeouts <= 0 @default_glibc_none: met 0",
				"mitigation=none: timeouts <= 0 @default_musl_none: met 0",
				"mitigation=none: shareAt5s >= 1% @default_glibc_none: met 1.93%",
				"mitigation=none: shareAt5s >= 1% @default_musl_none: met 2%",
			},
			wantReason: map[string]string{
				"claim 3: fail: broken pass": "default_musl_single-request-reopen:",
				"resolver=glibc mitigation=single-request-reopen: shareAt5s <= 0% @default_glibc_single-request-reopen: met 0%": "0 of 4000 lookups at 5 s multiples",
			},
		},
		{
			name: "single-request-reopen does nothing: bounds broken with the measured value",
			yaml: libcYAML,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				return resultstest.Cell{Lookups: 4000, Delayed: 0.02, EmulatorDropped: 100}, true
			},
			want: []string{
				"claim 1: pass: met pass",
				"claim 2: pass: broken fail",
				"claim 3: fail: broken pass",
				"resolver=glibc mitigation=single-request-reopen: p99 <= 100ms @default_glibc_single-request-reopen: broken 5.",
				"resolver=glibc mitigation=single-request-reopen: shareAt5s <= 0% @default_glibc_single-request-reopen: broken 1.77%",
				"resolver=glibc mitigation=single-request-reopen: emulatorDrops <= 0 @default_glibc_single-request-reopen: broken 100",
				"mitigation=none: timeouts <= 0 @default_glibc_none: met 0",
				"mitigation=none: timeouts <= 0 @default_musl_none: met 0",
				"mitigation=none: shareAt5s >= 1% @default_glibc_none: met 1.93%",
				"mitigation=none: shareAt5s >= 1% @default_musl_none: met 2%",
			},
		},
		{
			name: "a matched cell the run never reached, another incomplete: not evaluated, claims too",
			yaml: libcYAML,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, _ := raceLike(c)
				if c.ID == "default_musl_none" {
					cs.State, cs.Reason = results.Incomplete, "probe-1 stopped early"
				}
				return cs, c.ID != "default_glibc_single-request-reopen"
			},
			want: []string{
				"claim 1: pass: not-evaluated pass",
				"claim 2: pass: not-evaluated not-run",
				"claim 3: fail: not-evaluated pass",
				"resolver=glibc mitigation=single-request-reopen: p99 <= 100ms @default_glibc_single-request-reopen: not-evaluated ",
				"resolver=glibc mitigation=single-request-reopen: shareAt5s <= 0% @default_glibc_single-request-reopen: not-evaluated ",
				"resolver=glibc mitigation=single-request-reopen: emulatorDrops <= 0 @default_glibc_single-request-reopen: not-evaluated ",
				"mitigation=none: timeouts <= 0 @default_glibc_none: met 0",
				"mitigation=none: timeouts <= 0 @default_musl_none: not-evaluated ",
				"mitigation=none: shareAt5s >= 1% @default_glibc_none: met 1.93%",
				"mitigation=none: shareAt5s >= 1% @default_musl_none: not-evaluated ",
			},
			wantReason: map[string]string{
				"claim 1: pass: not-evaluated pass": "2 cells (default_glibc_single-request-reopen, default_musl_none) did not complete",
				"resolver=glibc mitigation=single-request-reopen: p99 <= 100ms @default_glibc_single-request-reopen: not-evaluated ": "the cell is not-run: no status file",
				"mitigation=none: timeouts <= 0 @default_musl_none: not-evaluated ":                                                  "the cell is incomplete: probe-1 stopped early",
			},
		},
		{
			name: "no emulator counters: drops not evaluated",
			yaml: libcYAML,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, _ := raceLike(c)
				cs.NoCounters = true
				return cs, true
			},
			want: []string{
				"claim 1: pass: met pass",
				"claim 2: pass: met pass",
				"claim 3: fail: broken pass",
				"resolver=glibc mitigation=single-request-reopen: p99 <= 100ms @default_glibc_single-request-reopen: met 4.",
				"resolver=glibc mitigation=single-request-reopen: shareAt5s <= 0% @default_glibc_single-request-reopen: met 0%",
				"resolver=glibc mitigation=single-request-reopen: emulatorDrops <= 0 @default_glibc_single-request-reopen: not-evaluated ",
				"mitigation=none: timeouts <= 0 @default_glibc_none: met 0",
				"mitigation=none: timeouts <= 0 @default_musl_none: met 0",
				"mitigation=none: shareAt5s >= 1% @default_glibc_none: met 1.93%",
				"mitigation=none: shareAt5s >= 1% @default_musl_none: met 2%",
			},
			wantReason: map[string]string{
				"resolver=glibc mitigation=single-request-reopen: emulatorDrops <= 0 @default_glibc_single-request-reopen: not-evaluated ": "no race emulator counters",
			},
		},
		{
			name: "gRPC: hit share, timeouts as a share, p50; claim 4 not run where it should pass",
			yaml: grpcYAML, spec: raceLike,
			want: []string{
				"claim 4: pass: broken not-run",
				"mitigation=none: p50 <= 1ms @default_grpc-ares_none: broken 1.96 ms",
				"mitigation=none: timeouts <= 50% @default_grpc-ares_none: met 29.1%",
				"mitigation=none: hitShare >= 10% @default_grpc-ares_none: met 29.1%",
				"mitigation=grpc-native*: hitShare <= 0.5% @default_grpc-ares_grpc-native+single-request-reopen: met 0%",
			},
			wantReason: map[string]string{
				"mitigation=none: timeouts <= 50% @default_grpc-ares_none: met 29.1%": "timed out",
				"mitigation=none: hitShare >= 10% @default_grpc-ares_none: met 29.1%": "calls hit",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := evaluate(t, tt.yaml, tt.spec)
			var got []string
			for _, r := range rs {
				got = append(got, line(r))
				if !strings.Contains(r.Source, "/run/scenario.yaml:") {
					t.Errorf("%s: source %q, want the recorded scenario's FILE:LINE", line(r), r.Source)
				}
				if r.Verdict == NotEvaluated && r.Reason == "" {
					t.Errorf("%s: not evaluated without a reason", line(r))
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d results, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range min(len(got), len(tt.want)) {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("result %d:\n got %s\nwant %s…", i, got[i], tt.want[i])
				}
			}
			for l, reason := range tt.wantReason {
				i := slices.Index(got, l)
				if i < 0 {
					i = slices.IndexFunc(got, func(g string) bool { return strings.HasPrefix(g, l) })
				}
				if i < 0 {
					t.Errorf("no result %q", l)
					continue
				}
				if !strings.Contains(rs[i].Reason, reason) {
					t.Errorf("%s: reason %q, want it to contain %q", l, rs[i].Reason, reason)
				}
			}
		})
	}
}

// Each cell bound names where it is written, the line of the bound itself.
func TestEvaluateSources(t *testing.T) {
	rs := evaluate(t, libcYAML, raceLike)
	sc, err := scenario.Parse("s.yaml", []byte(libcYAML))
	if err != nil {
		t.Fatal(err)
	}
	a := &analyze.Analysis{} // no cells: only the claims, not evaluated
	for _, r := range Evaluate(sc.Expect, a) {
		if r.Verdict != NotEvaluated || !strings.HasPrefix(r.Source, "s.yaml:9") {
			t.Errorf("%+v: want not evaluated at s.yaml:9", r)
		}
	}
	lines := map[string]bool{}
	for _, r := range rs {
		lines[r.Metric+"@"+r.Source[strings.LastIndex(r.Source, ":"):]] = true
	}
	if len(lines) < 5 {
		t.Errorf("bounds on different lines share a source: %v", lines)
	}
}

// pkg/scenario validates claims and verdicts against its own lists; they
// must be pkg/analyze's.
func TestScenarioKnowsAnalyzeClaims(t *testing.T) {
	if got, want := scenario.ClaimCount, len(analyze.ClaimTexts)-1; got != want {
		t.Errorf("scenario.ClaimCount = %d, analyze has %d claims", got, want)
	}
	want := []string{string(analyze.Pass), string(analyze.Fail), string(analyze.NotRun)}
	if !slices.Equal(scenario.ClaimVerdicts, want) {
		t.Errorf("scenario.ClaimVerdicts = %v, analyze's = %v", scenario.ClaimVerdicts, want)
	}
}

func TestFormats(t *testing.T) {
	for ms, want := range map[float64]string{0.85: "850 µs", 12.34: "12.3 ms", 4800: "4.80 s"} {
		if got := format.Duration(ms); got != want {
			t.Errorf("Duration(%g) = %q, want %q", ms, got, want)
		}
	}
	for share, want := range map[float64]string{0: "0%", 1.0 / 1200: "0.0833%", 0.125: "12.5%", 1: "100%"} {
		if got := Percent(share); got != want {
			t.Errorf("Percent(%g) = %q, want %q", share, got, want)
		}
	}
}
