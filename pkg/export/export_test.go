package export

import (
	"slices"
	"testing"

	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const syntheticYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: synthetic}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen, use-vc]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

var syntheticExpectations = []expect.Result{
	{Name: "claim 1: pass", Metric: "claim", Bound: "pass", Measured: "pass", Verdict: expect.Met},
	{Name: "resolver=musl mitigation=none: p99 <= 100ms", Cell: "default_musl_none", Metric: "p99", Bound: "<= 100ms", Measured: "5003ms", Verdict: expect.Broken, Source: "synthetic.yaml:12"},
	{Name: "resolver=musl mitigation=use-vc: p99 <= 100ms", Metric: "p99", Bound: "<= 100ms", Measured: "", Verdict: expect.NotEvaluated, Reason: "the cell did not run"},
}

// syntheticRun: glibc delayed without a mitigation, musl with and without;
// musl+use-vc never reached (no files), glibc+use-vc incomplete (samples lost).
func syntheticRun(t *testing.T, withSummary bool) results.RunDir {
	t.Helper()
	run, err := resultstest.WriteRun(t.TempDir(), "synthetic", syntheticYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
		cs := resultstest.Cell{Lookups: 3000, ClashRes: 300}
		if c.Backend == "musl" || c.Mitigations.IsNone() {
			cs.Delayed, cs.EmulatorDropped, cs.InsertFailed = 0.03, 90, 4
		}
		if c.Mitigations.Has("use-vc") {
			if c.Backend == "musl" {
				return cs, false
			}
			cs.LoseSamples = 5
		}
		return cs, true
	})
	if err != nil {
		t.Fatal(err)
	}
	if withSummary {
		// summary.json as pkg/report writes it (not imported: report calls export).
		s := map[string]any{"schema": "labrun.dev/summary/v1", "run": run.Name(), "expectations": syntheticExpectations}
		if err := results.WriteJSON(run.SummaryPath(), s); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

func loadSynthetic(t *testing.T, withSummary bool) *Source {
	t.Helper()
	src, err := Load(syntheticRun(t, withSummary))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestParseFormats(t *testing.T) {
	tests := []struct {
		in      []string
		want    []Format
		wantErr bool
	}{
		{in: []string{"csv"}, want: []Format{CSV}},
		{in: []string{"junit", "csv", "junit"}, want: []Format{CSV, JUnit}},
		{in: []string{"hdr,benchfmt"}, want: []Format{Benchfmt, HDR}},
		{in: []string{"all"}, want: Formats},
		{in: []string{"csv", "all"}, want: Formats},
		{in: []string{"xlsx"}, wantErr: true},
		{in: nil, wantErr: true},
		{in: []string{""}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseFormats(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseFormats(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseFormats(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestReadExpectations(t *testing.T) {
	src := loadSynthetic(t, true)
	if len(src.Expectations) != len(syntheticExpectations) {
		t.Fatalf("read %d expectations from summary.json, want %d", len(src.Expectations), len(syntheticExpectations))
	}
	if src.Expectations[1] != syntheticExpectations[1] {
		t.Errorf("expectation read back as %+v, want %+v", src.Expectations[1], syntheticExpectations[1])
	}
	if exp, err := ReadExpectations(syntheticRun(t, false)); err != nil || exp != nil {
		t.Errorf("without summary.json: %v, %v; want none and no error", exp, err)
	}
	run := syntheticRun(t, false)
	if err := results.WriteJSON(run.SummaryPath(), map[string]string{"schema": "other/v9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExpectations(run); err == nil {
		t.Error("a summary.json of another schema was read without error")
	}
}

func TestWriteAllFormats(t *testing.T) {
	src := loadSynthetic(t, true)
	src.Perfdash.Build = 1001
	dir := t.TempDir()
	files, err := Write(dir, src, Formats...)
	if err != nil {
		t.Fatal(err)
	}
	// perfdash: 2 files; csv, junit, benchfmt: 1 each; hdr: one per cell with
	// samples (5: the incomplete cell has some).
	if len(files) != 2+3+5 {
		t.Errorf("wrote %d files, want 10: %v", len(files), files)
	}
}
