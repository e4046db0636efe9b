package site

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const baselineYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: baseline}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

const grpcYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: grpc}
workload:
  resolvers: [glibc, grpc-ares]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

// The fixture's runs: two of the baseline scenario a month apart (the
// second with single-request-reopen failing glibc), one of the grpc
// scenario between them, a run that crashed before its scenario was
// written whole, and a run of an older labrun.
const (
	runA1     = "baseline-20260110-120000"
	runA2     = "baseline-20260210-120000"
	runB      = "grpc-20260120-090000"
	runBroken = "crashed-20260115-000000"
	runOld    = "old-20251201-000000"
)

var fixtureNow = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// baselineSpec: glibc delayed without mitigation; with single-request-reopen
// clean, unless srrDelayed; musl delayed either way (claim 3).
func baselineSpec(srrDelayed float64, lookups int) resultstest.Spec {
	return func(c scenario.Cell) (resultstest.Cell, bool) {
		cs := resultstest.Cell{Lookups: lookups, ClashRes: 200}
		switch {
		case c.Mitigations.IsNone() || c.Backend == "musl":
			cs.Delayed, cs.EmulatorDropped = 0.03, uint64(float64(lookups)*0.03)
		case srrDelayed > 0:
			cs.Delayed, cs.EmulatorDropped = srrDelayed, uint64(float64(lookups)*srrDelayed)
		}
		return cs, true
	}
}

func grpcSpec(c scenario.Cell) (resultstest.Cell, bool) {
	cs := resultstest.Cell{Lookups: 1500, ClashRes: 90}
	switch {
	case c.Backend == "glibc" && c.Mitigations.IsNone():
		cs.Delayed, cs.EmulatorDropped = 0.05, 75
	case c.Backend == "grpc-ares":
		cs.DeadlineExceeded, cs.EmulatorDropped = 0.2, 300
	}
	return cs, true
}

// writeFixture writes the fixture's runs under root and returns their
// directories by name.
func writeFixture(t testing.TB, root string) map[string]string {
	t.Helper()
	dirs := map[string]string{}
	a1 := writeRun(t, root, runA1, baselineYAML, baselineSpec(0, 2000), time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	withReport(t, a1, []expect.Result{
		{Name: "claim 2: pass", Metric: "claim", Bound: "pass", Measured: "pass", Verdict: expect.Met, Source: "baseline.yaml:12"},
		{Name: "resolver=glibc mitigation=single-request-reopen: p99 <= 100ms", Cell: "default_glibc_single-request-reopen",
			Metric: "p99", Bound: "<= 100ms", Measured: "3.9ms", Verdict: expect.Met, Source: "baseline.yaml:14"},
	})
	a2 := writeRun(t, root, runA2, baselineYAML, baselineSpec(0.02, 2500), time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC))
	withReport(t, a2, []expect.Result{
		{Name: "claim 2: pass", Metric: "claim", Bound: "pass", Measured: "fail", Verdict: expect.Broken, Source: "baseline.yaml:12"},
		{Name: "resolver=glibc mitigation=single-request-reopen: p99 <= 100ms", Cell: "default_glibc_single-request-reopen",
			Metric: "p99", Bound: "<= 100ms", Measured: "5.01s", Verdict: expect.Broken, Source: "baseline.yaml:14"},
		{Name: "resolver=musl mitigation=none: captures", Metric: "claim", Bound: "pass", Verdict: expect.NotEvaluated,
			Reason: "the run has no captures", Source: "baseline.yaml:16"},
	})
	// The grpc run has no report yet: the site rebuilds it from raw files.
	b := writeRun(t, root, runB, grpcYAML, grpcSpec, time.Date(2026, 1, 20, 9, 0, 0, 0, time.UTC))
	dirs[runA1], dirs[runA2], dirs[runB] = a1.Dir, a2.Dir, b.Dir

	broken := filepath.Join(root, runBroken)
	mustWrite(t, filepath.Join(broken, "scenario.yaml"), "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: bro")
	mustWrite(t, filepath.Join(broken, "status", "default_glibc_none.json"), `{"cell":"default_glibc_none","state":"complete"}`)
	dirs[runBroken] = broken

	old := filepath.Join(root, runOld)
	mustWrite(t, filepath.Join(old, "scenario.yaml"), "apiVersion: labrun.dev/v1alpha0\nkind: Scenario\nmetadata: {name: old}\nresolvers: [glibc]\n")
	mustWrite(t, filepath.Join(old, "summary.json"), `{"schema":"labrun.dev/summary/v0","run":"old-20251201-000000","cells":{}}`)
	dirs[runOld] = old
	return dirs
}

func writeRun(t testing.TB, root, name, yaml string, spec resultstest.Spec, started time.Time) results.RunDir {
	t.Helper()
	run, err := resultstest.WriteRun(root, name, yaml, spec)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := run.ReadEnv()
	if err != nil {
		t.Fatal(err)
	}
	env.Started = started
	env.Extra["emulator_profile"] = "5.0-5.5"
	if err := run.WriteEnv(env); err != nil {
		t.Fatal(err)
	}
	return run
}

// withReport writes the run's report as labrun run does, with the
// expectations' verdicts in summary.json.
func withReport(t testing.TB, run results.RunDir, exps []expect.Result) {
	t.Helper()
	a, _, err := report.Build(run)
	if err != nil {
		t.Fatal(err)
	}
	s := report.NewSummary(a)
	s.SetExpectations(exps)
	if err := results.WriteJSON(run.SummaryPath(), s); err != nil {
		t.Fatal(err)
	}
	// index.html is written after summary.json, as report.Write does.
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(run.IndexPath(), later, later); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
