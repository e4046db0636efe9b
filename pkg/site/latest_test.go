package site

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/compare"
)

// runA3 is a third baseline run, newer than the fixture's two, with no
// report: the site rebuilds it from its raw files.
const runA3 = "baseline-20260220-120000"

func scenarioOf(t *testing.T, p LatestPage, name string) *LatestScenario {
	t.Helper()
	for i := range p.Scenarios {
		if p.Scenarios[i].Scenario == name {
			return &p.Scenarios[i]
		}
	}
	t.Fatalf("scenario %s not on the latest page: %+v", name, p.Scenarios)
	return nil
}

// checkFixtureComparison checks the comparison of the two baseline runs of
// the fixture: single-request-reopen's delayed share went from 0 to 2 % for
// glibc, nothing else changed.
func checkFixtureComparison(t *testing.T, c *LatestComparison) {
	t.Helper()
	if c == nil {
		t.Fatal("no comparison")
	}
	if c.A.Name != runA1 || c.B.Name != runA2 || c.A.Page != "runs/"+runA1+"/index.html" || c.B.Page != "runs/"+runA2+"/index.html" {
		t.Errorf("compared %+v with %+v, want %s then %s with their pages", c.A, c.B, runA1, runA2)
	}
	if c.Tests != 8 || len(c.Latency) != 4 || len(c.Share) != 4 || c.Worse != 1 || c.Better != 0 {
		t.Errorf("tests %d, rows %d+%d, worse %d, better %d; want 8 tests in 4+4 rows, 1 worse", c.Tests, len(c.Latency), len(c.Share), c.Worse, c.Better)
	}
	for _, r := range append(append([]LatestRow{}, c.Latency...), c.Share...) {
		regression := r.Cell.ID == "default_glibc_single-request-reopen" && r.Metric == compare.Share5s
		if r.Regression != regression || r.Significant != regression || r.Improvement {
			t.Errorf("%s %s: regression %v significant %v improvement %v; want regression %v", r.Cell.ID, r.Metric,
				r.Regression, r.Significant, r.Improvement, regression)
		}
		if regression && (!strings.HasPrefix(r.Verdict, "+") || !strings.HasSuffix(r.Verdict, "pp worse") || r.AdjustedP != "<0.0001") {
			t.Errorf("the regression row: verdict %q, adjusted p %q", r.Verdict, r.AdjustedP)
		}
		if !regression && r.Verdict != "~" {
			t.Errorf("%s %s: verdict %q, want ~", r.Cell.ID, r.Metric, r.Verdict)
		}
		if r.Cell.Page != "cells/"+r.Cell.ID+".html" {
			t.Errorf("%s: history link %q", r.Cell.ID, r.Cell.Page)
		}
	}
}

func TestLatest(t *testing.T) {
	root := t.TempDir()
	dirs := writeFixture(t, filepath.Join(root, "results"))
	a3 := writeRun(t, filepath.Join(root, "results"), runA3, baselineYAML, baselineSpec(0.02, 2500), time.Date(2026, 2, 20, 12, 0, 0, 0, time.UTC))
	dirs[runA3] = a3.Dir

	tests := []struct {
		name string
		// builds are the successive builds into one site, each given
		// these runs' directories.
		builds [][]string
		check  func(t *testing.T, res *Result, out string)
	}{
		{"a share jumps: its row is a regression, the rest ~", [][]string{{runA1, runA2}}, func(t *testing.T, res *Result, out string) {
			s := scenarioOf(t, res.Latest, "baseline")
			if s.NoTest != "" || s.UsableRuns != 2 || s.Comparison == nil || s.Comparison.Source != ComputedNow {
				t.Fatalf("baseline: %+v", s)
			}
			checkFixtureComparison(t, s.Comparison)
			if res.Latest.Regressions != 1 {
				t.Errorf("%d scenarios with regressions, want 1", res.Latest.Regressions)
			}
			if len(res.Index.Comparisons) != 1 || res.Index.Comparisons[0].A != runA1 || res.Index.Comparisons[0].B != runA2 ||
				!res.Index.Comparisons[0].Computed.Equal(fixtureNow) {
				t.Errorf("stored comparisons %+v", res.Index.Comparisons)
			}
			page, err := os.ReadFile(filepath.Join(out, LatestFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(page, []byte(`class="regression"`)) || !bytes.Contains(page, []byte("▲ worse")) {
				t.Error("latest.html does not mark the regression")
			}
			golden(t, "latest.golden.json", root, res.Latest)
		}},
		{"rebuilt from index.json and the newest run alone: the stored comparison", [][]string{{runA1, runA2}, {runA2}}, func(t *testing.T, res *Result, _ string) {
			s := scenarioOf(t, res.Latest, "baseline")
			if s.NoTest != "" || s.Comparison == nil || s.Comparison.Source != FromIndex || !s.Comparison.Computed.Equal(fixtureNow) {
				t.Fatalf("baseline: %+v", s)
			}
			checkFixtureComparison(t, s.Comparison)
		}},
		{"predecessor known only from the index, nothing stored: no test", [][]string{{runA1}, {runA2}}, func(t *testing.T, res *Result, _ string) {
			s := scenarioOf(t, res.Latest, "baseline")
			if s.Comparison != nil || s.A == nil || s.A.Name != runA1 || s.B.Name != runA2 {
				t.Fatalf("baseline: %+v", s)
			}
			for _, part := range []string{"No test of " + runA2 + " against " + runA1, "raw samples of both runs",
				"the directory of " + runA1 + " was not among this build's inputs", "index.json",
				"labrun site results/" + runA1 + " results/" + runA2 + " -o SITE"} {
				if !strings.Contains(s.NoTest, part) {
					t.Errorf("no-test text %q lacks %q", s.NoTest, part)
				}
			}
			if len(res.Index.Comparisons) != 0 {
				t.Errorf("stored comparisons %+v, want none", res.Index.Comparisons)
			}
		}},
		{"a newer run without its predecessor: no test, the earlier comparison still shown", [][]string{{runA1, runA2}, {runA3}},
			func(t *testing.T, res *Result, _ string) {
				s := scenarioOf(t, res.Latest, "baseline")
				if s.A == nil || s.A.Name != runA2 || s.B.Name != runA3 || s.UsableRuns != 3 || !strings.Contains(s.NoTest, "the directory of "+runA2) {
					t.Fatalf("baseline: %+v", s)
				}
				if s.Comparison == nil || s.Comparison.Source != FromIndex {
					t.Fatalf("the earlier comparison is not shown: %+v", s.Comparison)
				}
				checkFixtureComparison(t, s.Comparison)
			}},
		{"a new pair at hand replaces the stored comparison", [][]string{{runA1, runA2}, {runA2, runA3}},
			func(t *testing.T, res *Result, _ string) {
				s := scenarioOf(t, res.Latest, "baseline")
				if s.NoTest != "" || s.Comparison == nil || s.Comparison.Source != ComputedNow || s.Comparison.A.Name != runA2 || s.Comparison.B.Name != runA3 {
					t.Fatalf("baseline: %+v", s)
				}
				if len(res.Index.Comparisons) != 1 || res.Index.Comparisons[0].A != runA2 {
					t.Errorf("stored comparisons %+v, want the one of %s and %s", res.Index.Comparisons, runA2, runA3)
				}
			}},
		{"one run per scenario: nothing to compare, no error", [][]string{{runA1, runB, runBroken}}, func(t *testing.T, res *Result, _ string) {
			if len(res.Latest.Scenarios) != 2 {
				t.Fatalf("scenarios %+v, want baseline and grpc", res.Latest.Scenarios)
			}
			for _, s := range res.Latest.Scenarios {
				if s.A != nil || s.Comparison != nil || s.NoTest != "" || s.UsableRuns != 1 {
					t.Errorf("%s: %+v, want no comparison", s.Scenario, s)
				}
			}
			if len(res.Index.Comparisons) != 0 {
				t.Errorf("stored comparisons %+v, want none", res.Index.Comparisons)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(root, "site"+string(rune('a'+i)))
			var res *Result
			for _, names := range tt.builds {
				var inputs []string
				for _, n := range names {
					inputs = append(inputs, dirs[n])
				}
				res = build(t, out, inputs...)
			}
			// What the page shows is what index.json on disk says.
			onDisk, _, err := ReadIndex(filepath.Join(out, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			again, err := NewLatest(onDisk, Histories(onDisk), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Only the source, and which directories the no-test text
			// names, differ: no run was read now.
			for j := range again.Scenarios {
				again.Scenarios[j].NoTest = res.Latest.Scenarios[j].NoTest
				if c := again.Scenarios[j].Comparison; c != nil {
					c.Source = res.Latest.Scenarios[j].Comparison.Source
				}
			}
			j1, _ := json.Marshal(again)
			j2, _ := json.Marshal(res.Latest)
			if !bytes.Equal(j1, j2) {
				t.Errorf("the page from index.json on disk differs from the page built:\n%s\n%s", j1, j2)
			}
			tt.check(t, res, out)
		})
	}
}

// An index.json written before comparisons existed still loads and builds.
func TestLatestOldIndex(t *testing.T) {
	root := t.TempDir()
	dirs := writeFixture(t, filepath.Join(root, "results"))
	out := filepath.Join(root, "site")
	build(t, out, dirs[runA1])
	data, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"comparisons"`)) {
		t.Fatal("an index with one run per scenario has a comparisons field")
	}
	res := build(t, out, dirs[runA2])
	if s := scenarioOf(t, res.Latest, "baseline"); s.NoTest == "" {
		t.Errorf("baseline: %+v", s)
	}
}

// Non-finite numbers are null in compare's JSON; read back, they must not
// become zeros.
func TestDecodeComparisonNulls(t *testing.T) {
	side := compare.Side{Lookups: 3, Tested: 3, MedianMS: 0, MedianLowMS: compare.Float(math.Inf(-1)), MedianHighMS: compare.Float(math.Inf(1))}
	in := compare.Comparison{Schema: compare.Schema, Rows: []compare.Row{{Cell: "c", Metric: compare.Latency, A: side,
		B: compare.Side{Lookups: 3, Tested: 3, MedianMS: 2, MedianLowMS: 1, MedianHighMS: 3}, Change: compare.Float(math.Inf(1))}}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeComparison(data)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Rows[0]
	if got := compare.Change(r); got != "?" {
		t.Errorf("change %q, want ?", got)
	}
	if got := compare.HalfWidth(r.A); got != "±∞" {
		t.Errorf("A's interval %q, want ±∞", got)
	}
	if got := compare.HalfWidth(r.B); got != "±50%" {
		t.Errorf("B's interval %q, want ±50%%", got)
	}
}
