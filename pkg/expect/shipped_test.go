package expect

import (
	"os"
	"testing"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

// The shipped scenarios' expectations must hold on runs shaped like the
// numbers measured on kind (docs/quick-start.md, captures.md,
// nodelocaldns.md), and break on a run where the fix does nothing: the
// expectations are neither contradictory nor empty.
func TestShippedExpectations(t *testing.T) {
	measured := map[string]resultstest.Spec{
		"baseline": func(c scenario.Cell) (resultstest.Cell, bool) {
			cs := map[string]resultstest.Cell{
				"default_glibc_none":                  {Lookups: 41, Delayed: 0.78, EmulatorDropped: 32},
				"default_glibc_single-request-reopen": {Lookups: 1200},
				"default_musl_none":                   {Lookups: 50, Delayed: 0.4, EmulatorDropped: 60},
				"default_musl_single-request-reopen":  {Lookups: 49, Delayed: 0.33, EmulatorDropped: 56},
			}[c.ID]
			if c.Backend == "glibc" {
				cs.Capture = &results.CaptureSummary{CaptureReport: results.CaptureReport{Queries: 1200, Answers: 1200, Lookups: results.CaptureLookupStats{Count: 200}}}
				if c.Mitigations.IsNone() {
					cs.Capture.SamePortPairs = 592
				}
			}
			return cs, true
		},
		"grpc": func(c scenario.Cell) (resultstest.Cell, bool) {
			return map[string]resultstest.Cell{
				"default_grpc-ares_none":                              {Lookups: 173, DeadlineExceeded: 0.37, EmulatorDropped: 64},
				"default_grpc-ares_single-request-reopen":             {Lookups: 189, DeadlineExceeded: 0.34, EmulatorDropped: 64},
				"default_grpc-ares_grpc-native":                       {Lookups: 104, DeadlineExceeded: 0.3, SlowOK: 0.3, EmulatorDropped: 40},
				"default_grpc-ares_grpc-native+single-request-reopen": {Lookups: 960},
			}[c.ID], true
		},
		"nodelocaldns": func(c scenario.Cell) (resultstest.Cell, bool) {
			if c.Mitigations.Has("nodelocaldns") {
				return resultstest.Cell{Lookups: 800}, true
			}
			return map[string]resultstest.Cell{
				"glibc":     {Lookups: 48, Delayed: 0.67, EmulatorDropped: 32},
				"musl":      {Lookups: 67, Delayed: 0.27, EmulatorDropped: 68},
				"grpc-ares": {Lookups: 96, DeadlineExceeded: 0.5, EmulatorDropped: 48},
			}[c.Backend], true
		},
	}
	for name, spec := range measured {
		data, err := os.ReadFile("../../scenarios/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		// The same run, but the mitigations do nothing: every cell delayed.
		noFix := func(c scenario.Cell) (resultstest.Cell, bool) {
			cs, ok := spec(c)
			cs.Lookups = max(cs.Lookups, 200)
			cs.Delayed, cs.EmulatorDropped = 0.3, 50
			if c.Backend != "glibc" && c.Backend != "musl" {
				cs.Delayed, cs.DeadlineExceeded = 0, 0.3
			}
			return cs, ok
		}
		for _, tt := range []struct {
			run    string
			spec   resultstest.Spec
			allMet bool
		}{{"as measured", spec, true}, {"fix does nothing", noFix, false}} {
			t.Run(name+"/"+tt.run, func(t *testing.T) {
				run, err := resultstest.WriteRun(t.TempDir(), name, string(data), tt.spec)
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
				rs := Evaluate(sc.Expect, a)
				if len(rs) < 3 {
					t.Fatalf("only %d expectations", len(rs))
				}
				broken := 0
				for _, r := range rs {
					if tt.allMet && r.Verdict != Met {
						t.Errorf("%s in %s: %s, measured %s (%s)", r.Name, r.Cell, r.Verdict, r.Measured, r.Reason)
					}
					if r.Verdict == Broken {
						broken++
					}
					if r.Verdict == NotEvaluated {
						t.Errorf("%s in %s: not evaluated on a complete run: %s", r.Name, r.Cell, r.Reason)
					}
				}
				if !tt.allMet && broken == 0 {
					t.Errorf("no expectation broken on a run where the fix does nothing: %s", Tally(rs))
				}
			})
		}
	}
}
