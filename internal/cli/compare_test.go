package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/compare"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const compareYAML = "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n" + `workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

// compareRuns writes run a, and run b where glibc's single-request-reopen
// cell has 5 % of its lookups delayed instead of none.
func compareRuns(t *testing.T) (a, b string) {
	t.Helper()
	root := t.TempDir()
	spec := func(seed uint64, srrDelayed float64) resultstest.Spec {
		return func(c scenario.Cell) (resultstest.Cell, bool) {
			cs := resultstest.Cell{Lookups: 2500, Seed: seed}
			switch {
			case c.ID == "default_glibc_single-request-reopen":
				cs.Delayed = srrDelayed
			case c.Mitigations.IsNone() || c.Backend == "musl":
				cs.Delayed = 0.02
			}
			return cs, true
		}
	}
	ra, err := resultstest.WriteRun(root, "a", compareYAML, spec(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := resultstest.WriteRun(root, "b", compareYAML, spec(2, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	return ra.Dir, rb.Dir
}

func TestCompareFormats(t *testing.T) {
	a, b := compareRuns(t)

	out, err := runCLI(t, "compare", a, b)
	if err != nil {
		t.Fatalf("a significant regression must not fail compare: %v", err)
	}
	for _, want := range []string{"Holm–Bonferroni over 8 tests", "latency (median", "5 s symptom",
		"worse", "1 of 8 tests significant: 1 worse, 0 better"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "compare", "--format", "json", a, b)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema string
		Tests  int
		Rows   []compare.Row
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var regressions []string
	for _, r := range doc.Rows {
		if r.Regression() {
			regressions = append(regressions, r.Cell+" "+string(r.Metric))
		}
	}
	if doc.Schema != compare.Schema || doc.Tests != 8 || len(doc.Rows) != 8 ||
		strings.Join(regressions, ",") != "default_glibc_single-request-reopen share_at_5s" {
		t.Errorf("json: schema %q, %d tests, %d rows, regressions %v", doc.Schema, doc.Tests, len(doc.Rows), regressions)
	}

	out, err = runCLI(t, "compare", "--format=csv", a, b)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	if len(lines) != 9 || strings.Join(lines[0], ",") != strings.Join(compare.CSVHeader, ",") {
		t.Errorf("csv: %d lines, header %v", len(lines), lines[0])
	}
}

func TestCompareBadInput(t *testing.T) {
	a, _ := compareRuns(t)
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a directory that is not a run", []string{"compare", a, empty}, "no scenario.yaml"},
		{"no such directory", []string{"compare", a, filepath.Join(empty, "absent")}, "absent"},
		{"one argument", []string{"compare", a}, "accepts 2 arg"},
		{"unknown format", []string{"compare", "--format", "yaml", a, a}, `--format "yaml": want text, json or csv`},
		{"alpha out of range", []string{"compare", "--alpha", "1.5", a, a}, "alpha 1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, tt.args...)
			if code := ExitCode(context.Background(), err); code != ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit %d, error %v; want %d and %q", code, err, ExitUsage, tt.want)
			}
		})
	}
}
