package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const reportScenario = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: t}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {}}
`

// raceLike: glibc fixed by single-request-reopen, musl not.
func raceLike(c scenario.Cell) (resultstest.Cell, bool) {
	cs := resultstest.Cell{Lookups: 2000}
	if c.Backend == "musl" || c.Mitigations.IsNone() {
		cs.Delayed, cs.EmulatorDropped = 0.03, 60
	}
	return cs, true
}

// TestReportExpectations runs `labrun report` on synthetic runs whose
// scenarios expect things that hold, that cannot hold, and that the run did
// not measure.
func TestReportExpectations(t *testing.T) {
	tests := []struct {
		name   string
		expect string
		spec   resultstest.Spec
		want   int
		lines  []string // each must be in stdout
	}{
		{
			name: "holds",
			expect: `expect:
  claims: {"1": pass, "2": pass, "3": pass}
  cells:
    - match: {resolver: glibc, mitigation: single-request-reopen}
      max: {shareAt5s: 0, p99: 1s}
`,
			spec: raceLike, want: ExitOK,
			lines: []string{
				"expectation met: claim 2: pass\n",
				"expectation met: resolver=glibc mitigation=single-request-reopen: p99 <= 1s: measured ",
				"expectations: 5 met\n",
			},
		},
		{
			name: "cannot hold",
			expect: `expect:
  claims: {"3": fail}
  cells:
    - match: {resolver: glibc, mitigation: single-request-reopen}
      max: {p99: 1ms}
`,
			spec: raceLike, want: ExitExpectation,
			lines: []string{
				"expectation broken: claim 3: fail: measured pass (",
				"expectation broken: resolver=glibc mitigation=single-request-reopen: p99 <= 1ms: measured ",
				" in cell default_glibc_single-request-reopen (",
				"/t/scenario.yaml:", // the recorded scenario's line
				"expectations: 2 broken\n",
			},
		},
		{
			name: "a matched cell not run",
			expect: `expect:
  cells:
    - match: {mitigation: single-request-reopen}
      max: {p99: 1s}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, _ := raceLike(c)
				return cs, c.ID != "default_musl_single-request-reopen"
			},
			want: ExitError,
			lines: []string{
				"expectation met: mitigation=single-request-reopen: p99 <= 1s: measured ",
				"expectation not evaluated: mitigation=single-request-reopen: p99 <= 1s in cell default_musl_single-request-reopen: the cell is not-run: no status file",
				"expectations: 1 met, 1 not evaluated\n",
			},
		},
		{
			name: "broken, and a cell not run: the failure wins",
			expect: `expect:
  cells:
    - match: {mitigation: single-request-reopen}
      max: {p99: 1ms}
`,
			spec: func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, _ := raceLike(c)
				return cs, c.ID != "default_musl_single-request-reopen"
			},
			want: ExitError,
			lines: []string{
				"expectation broken: mitigation=single-request-reopen: p99 <= 1ms: measured ",
				"expectation not evaluated: mitigation=single-request-reopen: p99 <= 1ms in cell default_musl_single-request-reopen",
				"expectations: 1 broken, 1 not evaluated\n",
			},
		},
		{
			name: "no expectations",
			spec: raceLike, want: ExitOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := resultstest.WriteRun(t.TempDir(), "t", reportScenario+tt.expect, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			ctx := context.Background()
			err = Run(ctx, Streams{Out: &out, Err: &errOut}, []string{"report", run.Dir})
			if got := ExitCode(ctx, err); got != tt.want {
				t.Errorf("exit %d (%v), want %d; stdout:\n%s", got, err, tt.want, out.String())
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("stdout lacks %q:\n%s", l, out.String())
				}
			}
			if tt.expect == "" && strings.Contains(out.String(), "expectations:") {
				t.Errorf("a scenario without expectations printed some:\n%s", out.String())
			}
		})
	}
}
