package compare

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const header = "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: t}\n"

// baselineYAML has the baseline scenario's four cells.
const baselineYAML = header + `workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

const grpcYAML = header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, grpc-native]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

// writeRun writes a synthetic run; spec may return ok=false for a cell.
func writeRun(t testing.TB, root, name, yaml string, spec resultstest.Spec) results.RunDir {
	t.Helper()
	run, err := resultstest.WriteRun(root, name, yaml, spec)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// raceLike: glibc and musl delayed without a mitigation, musl also with
// single-request-reopen (it ignores the option), as on a real baseline run.
func raceLike(lookups int, seed uint64) resultstest.Spec {
	return func(c scenario.Cell) (resultstest.Cell, bool) {
		cs := resultstest.Cell{Lookups: lookups, Seed: seed}
		if c.Mitigations.IsNone() || c.Backend == "musl" {
			cs.Delayed = 0.02
		}
		return cs, true
	}
}

func row(t *testing.T, cmp *Comparison, cell string, m Metric) Row {
	t.Helper()
	for _, r := range cmp.Rows {
		if r.Cell == cell && r.Metric == m {
			return r
		}
	}
	t.Fatalf("no %s row for %s in %+v", m, cell, cmp.Rows)
	return Row{}
}

// TestSameSpecIsNotSignificant compares many pairs of runs of one spec that
// differ only in their seeds. With the minimum effects, nothing may be
// flagged. Without them, the tests alone must hold the family-wise error
// rate near α (Holm–Bonferroni), and the latency p-values must look
// uniform: a U test that is too eager, or one stuck at p = 1, fails this.
func TestSameSpecIsNotSignificant(t *testing.T) {
	runs := 21 // 20 comparisons of consecutive runs
	if testing.Short() {
		runs = 10
	}
	pairs := runs - 1
	root := t.TempDir()
	var flagged, flaggedNoMin, latTests, latBelowAlpha int
	var latSum float64
	prev := writeRun(t, root, "r0", baselineYAML, raceLike(2500, 1))
	for i := 1; i < runs; i++ {
		a := prev
		b := writeRun(t, root, fmt.Sprintf("r%d", i), baselineYAML, raceLike(2500, uint64(i+1)))
		prev = b
		cmp, err := Runs(a, b, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if cmp.Tests != 8 || len(cmp.Rows) != 8 {
			t.Fatalf("pair %d: %d tests, %d rows; want 8 (4 cells × 2)", i, cmp.Tests, len(cmp.Rows))
		}
		for _, r := range cmp.Rows {
			if r.Significant || r.Direction != Same {
				flagged++
				t.Errorf("pair %d: %s %s flagged %s (change %v, p %v, adjusted %v)", i, r.Cell, r.Metric, r.Direction, r.Change, r.P, r.AdjustedP)
			}
			if r.Metric == Latency {
				latTests++
				latSum += r.P
				if r.P < 0.05 {
					latBelowAlpha++
				}
			}
		}
		// The same comparison with no minimum effect: only the tests decide.
		raw, err := Runs(a, b, noMinimum())
		if err != nil {
			t.Fatal(err)
		}
		if len(raw.Regressions())+len(raw.Improvements()) > 0 {
			flaggedNoMin++
		}
	}
	// Expected: at most α·pairs families with a false positive (≤ 1); 4 or
	// more of 20 has a probability under 2 % for tests that hold their level.
	if flaggedNoMin > 3 {
		t.Errorf("%d of %d same-spec comparisons had a significant row without minimum effects; want ≤ 3 (α = 0.05)", flaggedNoMin, pairs)
	}
	// Uniform p-values: mean 0.5 (sd 0.29/√n: 0.03 for 80 tests, 0.05 for
	// 36), 5 % of them below 0.05.
	if mean := latSum / float64(latTests); mean < 0.35 || mean > 0.65 {
		t.Errorf("mean latency p-value %.3f over %d same-spec tests; want about 0.5", mean, latTests)
	}
	if limit := latTests/20 + 6; latBelowAlpha > limit {
		t.Errorf("%d of %d same-spec latency tests had p < 0.05; want about %d, at most %d", latBelowAlpha, latTests, latTests/20, limit)
	}
	t.Logf("%d pairs: %d rows flagged; without minimum effects %d families flagged; latency p mean %.3f, %d of %d below 0.05",
		pairs, flagged, flaggedNoMin, latSum/float64(latTests), latBelowAlpha, latTests)
}

// TestDelayedShareIsARegression: glibc's single-request-reopen cell goes
// from no delays to some; the share row must say so, and latency too when
// the delays move the median past the minimum effect.
func TestDelayedShareIsARegression(t *testing.T) {
	root := t.TempDir()
	srr := "default_glibc_single-request-reopen"
	a := writeRun(t, root, "a", baselineYAML, raceLike(2500, 1))
	for _, tt := range []struct {
		delayed       float64
		latencyWorse  bool
		wantShareDiff float64 // percentage points, roughly
	}{
		{0.05, false, 5}, // the median moves ~3 %: under the 5 % minimum
		{0.10, true, 10}, // the median moves ~7 %
	} {
		t.Run(fmt.Sprint(tt.delayed), func(t *testing.T) {
			b := writeRun(t, root, fmt.Sprintf("b%v", tt.delayed), baselineYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
				cs, ok := raceLike(2500, 2)(c)
				if c.ID == srr {
					cs.Delayed = tt.delayed
				}
				return cs, ok
			})
			cmp, err := Runs(a, b, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			sh := row(t, cmp, srr, Share5s)
			if !sh.Significant || sh.Direction != Worse || !sh.Regression() {
				t.Errorf("share: significant %v, direction %s; want a significant regression (%+v)", sh.Significant, sh.Direction, sh)
			}
			if d := float64(sh.Change); sh.A.Events != 0 || d < 0.8*tt.wantShareDiff || d > 1.2*tt.wantShareDiff {
				t.Errorf("share: A events %d, change %vpp; want 0 and about %vpp", sh.A.Events, sh.Change, tt.wantShareDiff)
			}
			lat := row(t, cmp, srr, Latency)
			if lat.Regression() != tt.latencyWorse {
				t.Errorf("latency: regression %v, want %v (ratio %v, p %v, adjusted %v)", lat.Regression(), tt.latencyWorse, lat.Change, lat.P, lat.AdjustedP)
			}
			if lat.B.P99MS < 4500 {
				t.Errorf("latency: B p99 %v ms; want a 5 s delay", lat.B.P99MS)
			}
			regs := cmp.Regressions()
			for _, r := range regs {
				if r.Cell != srr {
					t.Errorf("unexpected regression %s %s", r.Cell, r.Metric)
				}
			}
			if len(cmp.Improvements()) != 0 {
				t.Errorf("improvements %+v, want none", cmp.Improvements())
			}
		})
	}
}

// TestGRPCHitShare: gRPC cells are judged on the share of calls hit
// (deadline exceeded), not on 5 s multiples.
func TestGRPCHitShare(t *testing.T) {
	root := t.TempDir()
	spec := func(seed uint64, native float64) resultstest.Spec {
		return func(c scenario.Cell) (resultstest.Cell, bool) {
			cs := resultstest.Cell{Lookups: 2000, Seed: seed, DeadlineExceeded: 0.3}
			if !c.Mitigations.IsNone() {
				cs.DeadlineExceeded = native
			}
			return cs, true
		}
	}
	a := writeRun(t, root, "a", grpcYAML, spec(1, 0))
	b := writeRun(t, root, "b", grpcYAML, spec(2, 0.02))
	cmp, err := Runs(a, b, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cmp.Rows {
		if r.Metric == Share5s {
			t.Errorf("%s: a gRPC cell judged on 5 s multiples", r.Cell)
		}
	}
	none := row(t, cmp, "default_grpc-ares_none", HitShare)
	if none.Significant || none.A.Share < 0.25 || none.A.Share > 0.35 {
		t.Errorf("none: share %v → %v, significant %v; want about 0.3 both, not significant", none.A.Share, none.B.Share, none.Significant)
	}
	native := row(t, cmp, "default_grpc-ares_grpc-native", HitShare)
	if !native.Regression() || native.A.Events != 0 {
		t.Errorf("grpc-native: %+v; want a significant regression from 0 hits", native)
	}
}

func TestTooFewSamplesWarn(t *testing.T) {
	small := func(seed uint64, lookups int, delayed float64) resultstest.Spec {
		return func(c scenario.Cell) (resultstest.Cell, bool) {
			return resultstest.Cell{Lookups: lookups, Seed: seed, Delayed: delayed}, true
		}
	}
	tests := []struct {
		name           string
		a, b           resultstest.Spec
		metric         Metric
		want           string
		notSignificant bool
	}{
		{"5 lookups: no U test can reach α/m", small(1, 5, 0), small(2, 5, 0), Latency, "need ≥ 6 lookups in each run to detect a change of latency", true},
		{"5 lookups: no median interval", small(1, 5, 0), small(2, 5, 0), Latency, "need ≥ 6 lookups for a 95 % interval of the median", true},
		// Both show no event: the warning is about the minimum effect.
		{"no events in 2500 lookups: 0.1 % could hide", small(1, 2500, 0), small(2, 2500, 0), Share5s, "need ≥ 3000 lookups to detect a share of 0.10%", true},
		{"a share change too small for 400 lookups", small(1, 400, 0), small(2, 400, 0.005), Share5s, "lookups to detect a share of", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := writeRun(t, dir, "a", baselineYAML, tt.a)
			b := writeRun(t, dir, "b", baselineYAML, tt.b)
			cmp, err := Runs(a, b, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			r := row(t, cmp, "default_glibc_none", tt.metric)
			if tt.notSignificant && r.Significant {
				t.Errorf("significant: %+v", r)
			}
			if !strings.Contains(strings.Join(r.Warnings, "\n"), tt.want) {
				t.Errorf("warnings %q; want one with %q", r.Warnings, tt.want)
			}
		})
	}
}

// TestWarningsOnlyWhenTooSmall: a large cell with no change gets no
// share warning when it could have shown the minimum effect.
func TestNoWarningWhenLargeEnough(t *testing.T) {
	dir := t.TempDir()
	spec := func(seed uint64) resultstest.Spec {
		return func(c scenario.Cell) (resultstest.Cell, bool) {
			return resultstest.Cell{Lookups: 4000, Seed: seed}, true
		}
	}
	cmp, err := Runs(writeRun(t, dir, "a", baselineYAML, spec(1)), writeRun(t, dir, "b", baselineYAML, spec(2)), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cmp.Rows {
		if len(r.Warnings) > 0 {
			t.Errorf("%s %s: warnings %q with 4000 lookups a run", r.Cell, r.Metric, r.Warnings)
		}
	}
}

// TestCellsNotInBoth: cells of one scenario only, cells not run, cells
// incomplete and cells without samples are listed, not compared.
func TestCellsNotInBoth(t *testing.T) {
	dir := t.TempDir()
	onlyGlibc := header + `workload:
  resolvers: [glibc]
  mitigations: [none, single-request-reopen, use-vc]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`
	a := writeRun(t, dir, "a", baselineYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
		switch c.ID {
		case "default_glibc_single-request-reopen":
			return resultstest.Cell{Lookups: 100, LoseSamples: 3}, true // demoted to incomplete
		}
		return resultstest.Cell{Lookups: 300, Seed: 1}, true
	})
	b := writeRun(t, dir, "b", onlyGlibc, func(c scenario.Cell) (resultstest.Cell, bool) {
		if c.ID == "default_glibc_none" {
			return resultstest.Cell{}, false // the run stopped before it
		}
		return resultstest.Cell{Lookups: 300, Seed: 2}, true
	})
	cmp, err := Runs(a, b, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cmp.OnlyA, ","), "default_musl_none,default_musl_single-request-reopen"; got != want {
		t.Errorf("only in A: %s, want %s", got, want)
	}
	if got, want := strings.Join(cmp.OnlyB, ","), "default_glibc_use-vc"; got != want {
		t.Errorf("only in B: %s, want %s", got, want)
	}
	states := map[string]string{}
	for _, u := range cmp.Unmeasured {
		states[u.Cell] = u.A.State + "/" + u.B.State
	}
	want := map[string]string{"default_glibc_none": "complete/not-run", "default_glibc_single-request-reopen": "incomplete/complete"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("unmeasured %v, want %v", states, want)
	}
	if len(cmp.Rows) != 0 || cmp.Tests != 0 {
		t.Errorf("rows %d, tests %d; want none", len(cmp.Rows), cmp.Tests)
	}
	var text strings.Builder
	if err := cmp.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"only in A (2): default_musl_none", "only in B (1): default_glibc_use-vc",
		"default_glibc_single-request-reopen: A incomplete", "0 of 0 tests significant"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
}

func TestNotARun(t *testing.T) {
	dir := t.TempDir()
	a := writeRun(t, dir, "a", baselineYAML, raceLike(10, 1))
	_, err := Runs(a, results.RunDir{Dir: t.TempDir()}, DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "no scenario.yaml") {
		t.Fatalf("error %v; want one naming the missing scenario.yaml", err)
	}
	if _, err := Runs(a, a, Options{}); err == nil || !strings.Contains(err.Error(), "alpha 0") {
		t.Errorf("zero Options: error %v, want a refusal", err)
	}
	if _, err := Runs(a, a, Options{Alpha: 2, Confidence: 0.95, MaxSamples: 10}); err == nil || !strings.Contains(err.Error(), "alpha 2") {
		t.Errorf("alpha 2: error %v, want a refusal naming it", err)
	}
}

// TestMinimumEffect: with many lookups a 3 % shift of the median has a tiny
// p-value, and is still not called significant; 8 % is.
func TestMinimumEffect(t *testing.T) {
	dir := t.TempDir()
	spec := func(seed uint64, median float64) resultstest.Spec {
		return func(c scenario.Cell) (resultstest.Cell, bool) {
			return resultstest.Cell{Lookups: 20000, Seed: seed, MedianUS: median}, c.ID == "default_glibc_none"
		}
	}
	a := writeRun(t, dir, "a", baselineYAML, spec(1, 1500))
	tests := []struct {
		median       float64
		worse, below bool
	}{
		{1545, false, true},  // +3 %
		{1620, true, false},  // +8 %
		{1380, false, false}, // −8 %: better
	}
	for _, tt := range tests {
		b := writeRun(t, dir, fmt.Sprint("b", tt.median), baselineYAML, spec(2, tt.median))
		cmp, err := Runs(a, b, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		r := row(t, cmp, "default_glibc_none", Latency)
		if r.Regression() != tt.worse || r.BelowMinEffect != tt.below {
			t.Errorf("median %v: regression %v, below the minimum %v; want %v, %v (ratio %v, adjusted p %v)",
				tt.median, r.Regression(), r.BelowMinEffect, tt.worse, tt.below, r.Change, r.AdjustedP)
		}
		if tt.median < 1500 && (!r.Significant || r.Direction != Better) {
			t.Errorf("median %v: %s, significant %v; want significantly better", tt.median, r.Direction, r.Significant)
		}
		// The cells the runs lack are listed as not measured, not tested.
		if cmp.Tests != 2 || len(cmp.Unmeasured) != 3 {
			t.Errorf("tests %d, unmeasured %d; want 2 and 3", cmp.Tests, len(cmp.Unmeasured))
		}
	}
}

func noMinimum() Options {
	o := DefaultOptions()
	o.MinMedianChange, o.MinShareChange = 0, 0
	return o
}

// TestPairedCells: a run whose scenario swapped single-request-reopen for
// none is compared cell to cell with --pair; the fixed cell's loss of its
// fix is a significant regression, and a pair naming a missing cell is
// refused.
func TestPairedCells(t *testing.T) {
	dir := t.TempDir()
	a := writeRun(t, dir, "a", baselineYAML, raceLike(1200, 1))
	unmitigated := header + `workload:
  resolvers: [glibc, musl]
  mitigations: [none]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`
	b := writeRun(t, dir, "b", unmitigated, raceLike(1200, 2))
	opts := DefaultOptions()
	opts.Pairs = map[string]string{"default_glibc_single-request-reopen": "default_glibc_none"}
	cmp, err := Runs(a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := row(t, cmp, "default_glibc_single-request-reopen vs default_glibc_none", Share5s)
	if !r.Regression() {
		t.Errorf("the swapped cell must be a significant regression: %+v", r)
	}
	if got := row(t, cmp, "default_glibc_none", Share5s); got.Significant {
		t.Errorf("the unchanged cell must be ~: %+v", got)
	}
	if strings.Join(cmp.OnlyB, ",") != "" || strings.Join(cmp.OnlyA, ",") != "default_musl_single-request-reopen" {
		t.Errorf("only in A %v, only in B %v", cmp.OnlyA, cmp.OnlyB)
	}
	opts.Pairs = map[string]string{"default_glibc_use-vc": "default_glibc_none"}
	if _, err := Runs(a, b, opts); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "run A has no cell default_glibc_use-vc") {
		t.Errorf("a pair naming a missing cell: %v", err)
	}
}
