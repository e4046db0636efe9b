package site

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares v as indented JSON with testdata/name, the temporary
// root written as $ROOT.
func golden(t *testing.T, name, root string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(bytes.ReplaceAll(got, []byte(root), []byte("$ROOT")), '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/site -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./pkg/site -update and review the diff", path)
	}
}

func build(t *testing.T, out string, inputs ...string) *Result {
	t.Helper()
	res, err := Build(context.Background(), Options{Inputs: inputs, Out: out, Now: func() time.Time { return fixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func runByName(t *testing.T, idx *Index, name string) *Run {
	t.Helper()
	i := slices.IndexFunc(idx.Runs, func(r Run) bool { return r.Name == name })
	if i < 0 {
		t.Fatalf("run %s not in the index", name)
	}
	return &idx.Runs[i]
}

func historyOf(hs []History, cell string) *History {
	for i := range hs {
		if hs[i].Cell == cell {
			return &hs[i]
		}
	}
	return nil
}

func TestBuildFromResultsFolder(t *testing.T) {
	root := t.TempDir()
	resultsDir := filepath.Join(root, "results")
	dirs := writeFixture(t, resultsDir)
	if err := os.RemoveAll(dirs[runB]); err != nil { // the grpc run comes later (TestRebuildKeepsHistory)
		t.Fatal(err)
	}
	out := filepath.Join(root, "site")
	res := build(t, out, resultsDir)
	idx := res.Index

	// Index rows: newest first, broken ones listed with their reason.
	var names []string
	for _, r := range idx.Runs {
		names = append(names, r.Name)
	}
	if want := []string{runA2, runBroken, runA1, runOld}; !slices.Equal(names, want) {
		t.Errorf("runs = %v, want %v (newest first)", names, want)
	}
	a1, a2 := runByName(t, idx, runA1), runByName(t, idx, runA2)
	for _, r := range []*Run{a1, a2} {
		if r.Source != FromSummary || r.Note != "" || r.Scenario != "baseline" || r.Kernel != "6.18.0-synthetic" || r.EmulatorProfile != "5.0-5.5" {
			t.Errorf("%s: source %q note %q scenario %q kernel %q emulator %q", r.Name, r.Source, r.Note, r.Scenario, r.Kernel, r.EmulatorProfile)
		}
		if len(r.Shapes) != 1 || r.Shapes[0] != (Shape{Cluster: "default", PodNetwork: "default", KubeProxy: "iptables", DNS: "coredns"}) {
			t.Errorf("%s: shapes %+v", r.Name, r.Shapes)
		}
		if r.CellStates != (StateCounts{Complete: 4}) {
			t.Errorf("%s: cells %+v", r.Name, r.CellStates)
		}
	}
	if a1.ExpectationCounts != (ExpectCounts{Met: 2}) || a2.ExpectationCounts != (ExpectCounts{Broken: 2, NotEvaluated: 1}) {
		t.Errorf("expectations: %s %+v, %s %+v", a1.Name, a1.ExpectationCounts, a2.Name, a2.ExpectationCounts)
	}
	if a1.Claims[1].Verdict != analyze.Pass || a2.Claims[1].Verdict != analyze.Fail {
		t.Errorf("claim 2: %s on %s, %s on %s; want pass then fail", a1.Claims[1].Verdict, a1.Name, a2.Claims[1].Verdict, a2.Name)
	}
	broken, old := runByName(t, idx, runBroken), runByName(t, idx, runOld)
	if broken.OK() || !strings.Contains(broken.Problem, "no summary.json") || !strings.Contains(broken.Problem, "scenario.yaml") {
		t.Errorf("broken run: %q", broken.Problem)
	}
	if old.OK() || !strings.Contains(old.Problem, `schema "labrun.dev/summary/v0"`) {
		t.Errorf("older-schema run: %q", old.Problem)
	}
	if old.Date.IsZero() || broken.Page != "" {
		t.Errorf("broken runs keep the date of their name (%v) and have no page (%q)", old.Date, broken.Page)
	}

	// Grid: claim 2 and two expectations flip; an expectation only the
	// newer run has is absent from the older.
	g := NewGrid(idx)
	if len(g.Columns) != 2 || g.Columns[0].Run != runA2 {
		t.Fatalf("grid columns %+v, want the 2 usable runs, newest left", g.Columns)
	}
	flipped := map[string]int{}
	for _, row := range g.Rows {
		if row.Flips > 0 {
			flipped[row.Key] = row.Flips
		}
	}
	wantFlips := map[string]int{"claim 2": 1, "claim 2: pass": 1, "resolver=glibc mitigation=single-request-reopen: p99 <= 100ms": 1}
	if !mapsEqual(flipped, wantFlips) {
		t.Errorf("flipped rows %v, want %v", flipped, wantFlips)
	}
	last := g.Rows[len(g.Rows)-1]
	if last.Key != "resolver=musl mitigation=none: captures" || last.Cells[0].Class != ClassNotRun || last.Cells[1].Class != ClassAbsent {
		t.Errorf("last row %+v", last)
	}
	if len(g.Rows) != 11+3 {
		t.Errorf("%d rows, want 11 claims and 3 expectations", len(g.Rows))
	}

	// Histories: every cell of the two baseline runs, with each run's values.
	hs := Histories(idx)
	if len(hs) != 4 {
		t.Fatalf("%d histories, want 4", len(hs))
	}
	h := historyOf(hs, "default_glibc_single-request-reopen")
	if h == nil || len(h.Points) != 2 || h.Points[0].Run != runA1 {
		t.Fatalf("history %+v", h)
	}
	if s := *h.Points[0].ShareAt5s; s != 0 {
		t.Errorf("srr share at 5 s in %s = %g, want 0", runA1, s)
	}
	if s := *h.Points[1].ShareAt5s; s < 0.01 || s > 0.03 {
		t.Errorf("srr share at 5 s in %s = %g, want about 0.02", runA2, s)
	}
	// Delayed at 2 % against its baseline's 3 %, both p99s are the 5 s
	// retry; clean in the first run, its p99 is a thousandth of it.
	if p := h.Points[1]; p.Lookups != 2500 || *p.EmulatorDropped != 50 || p.P99Ratio == nil || p.P99Ratio.Ratio < 0.95 || p.P99Ratio.Ratio > 1.05 {
		t.Errorf("srr in %s: lookups %d dropped %v p99 ratio %+v", runA2, p.Lookups, *p.EmulatorDropped, p.P99Ratio)
	}
	if p := h.Points[0]; p.P99Ratio == nil || p.P99Ratio.High > 0.01 {
		t.Errorf("srr in %s: p99 ratio %+v, want below 0.01", runA1, p.P99Ratio)
	}
	golden(t, "index.golden.json", root, idx)
	golden(t, "grid.golden.json", root, g)
	golden(t, "histories.golden.json", root, hs)
	golden(t, "panels.golden.json", root, Panels(*h))

	// What is on disk is what was returned.
	onDisk, ok, err := ReadIndex(filepath.Join(out, IndexFile))
	if err != nil || !ok {
		t.Fatalf("index.json: %v %v", ok, err)
	}
	j1, _ := json.Marshal(onDisk)
	j2, _ := json.Marshal(idx)
	if !bytes.Equal(j1, j2) {
		t.Error("index.json on disk differs from the index Build returned")
	}
	for _, f := range []string{"index.html", "claims.html", "runs/" + runA1 + "/index.html", "runs/" + runA1 + "/plots/counters.png",
		"runs/" + runA1 + "/summary.json", h.Page, "cells/figures/default_glibc_single-request-reopen-latency.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("site lacks %s: %v", f, err)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRebuildKeepsHistory(t *testing.T) {
	root := t.TempDir()
	dirs := writeFixture(t, filepath.Join(root, "results"))
	out := filepath.Join(root, "site")
	build(t, out, dirs[runA1], dirs[runA2], dirs[runBroken], dirs[runOld])
	// Only the new run is at hand now: the old run directories are gone.
	for _, n := range []string{runA1, runA2, runBroken, runOld} {
		if err := os.RemoveAll(dirs[n]); err != nil {
			t.Fatal(err)
		}
	}
	res := build(t, out, dirs[runB])
	idx := res.Index
	if len(idx.Runs) != 5 || !slices.Equal(res.Read, []string{runB}) || len(res.Kept) != 4 {
		t.Fatalf("%d runs, read %v, kept %v", len(idx.Runs), res.Read, res.Kept)
	}
	b := runByName(t, idx, runB)
	if b.Source != FromRaw || !strings.Contains(b.Note, "no summary.json") {
		t.Errorf("grpc run: source %q note %q", b.Source, b.Note)
	}
	if _, err := os.Stat(filepath.Join(dirs[runB], "summary.json")); !os.IsNotExist(err) {
		t.Errorf("the site wrote into the run directory: %v", err)
	}
	h := historyOf(Histories(idx), "default_glibc_none")
	if h == nil || len(h.Points) != 3 {
		t.Fatalf("default_glibc_none history %+v, want 3 runs", h)
	}
	var order []string
	for _, p := range h.Points {
		order = append(order, p.Run)
	}
	if want := []string{runA1, runB, runA2}; !slices.Equal(order, want) {
		t.Errorf("history order %v, want %v (oldest first)", order, want)
	}
	if s := *h.Points[1].ShareAt5s; s < 0.04 || s > 0.06 {
		t.Errorf("glibc none in the grpc run: share at 5 s %g, want about 0.05", s)
	}
	if historyOf(Histories(idx), "default_grpc-ares_none") != nil {
		t.Error("a cell of one run got a history")
	}
	for _, p := range Histories(idx)[0].Points {
		if p.Scenario == "grpc" && p.HitShare != nil {
			t.Errorf("glibc cell with a gRPC hit share: %+v", p)
		}
	}
	ga := runByName(t, idx, runB).Cells
	i := slices.IndexFunc(ga, func(c CellResult) bool { return c.ID == "default_grpc-ares_none" })
	if i < 0 || ga[i].HitShare == nil || *ga[i].HitShare < 0.15 || *ga[i].HitShare > 0.25 {
		t.Errorf("grpc-ares none hit share: %+v", ga[i])
	}
	// The kept runs' pages are still there, their navigation now links the
	// grpc run's shared cell.
	page, err := os.ReadFile(filepath.Join(out, "runs", runA1, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(page, navStart); n != 1 {
		t.Errorf("run page has %d navigation blocks, want 1", n)
	}
	if !bytes.Contains(page, []byte(`href="../../cells/default_glibc_none.html"`)) {
		t.Error("kept run page does not link its cell's history")
	}
	if runByName(t, idx, runBroken).OK() || runByName(t, idx, runOld).OK() {
		t.Error("broken runs of the earlier index should stay listed as broken")
	}
}

func TestCurrentSummary(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, run results.RunDir)
		current bool   // summary returned
		why     string // part of the reason; "" when usable as is
	}{
		{"as labrun run leaves it", func(*testing.T, results.RunDir) {}, true, ""},
		{"no summary", func(t *testing.T, r results.RunDir) { os.Remove(r.SummaryPath()) }, false, "no summary.json"},
		{"not JSON", func(t *testing.T, r results.RunDir) { mustWrite(t, r.SummaryPath(), "{") }, false, "not JSON"},
		{"older schema", func(t *testing.T, r results.RunDir) {
			mustWrite(t, r.SummaryPath(), `{"schema":"labrun.dev/summary/v0"}`)
		}, false, `schema "labrun.dev/summary/v0"`},
		{"a cell resumed after the report", func(t *testing.T, r results.RunDir) {
			touch(t, filepath.Join(r.Dir, "status", "default_glibc_none.json"), 5)
		}, false, "older than status/default_glibc_none.json"},
		{"page older than summary", func(t *testing.T, r results.RunDir) { touch(t, r.SummaryPath(), 5) }, true, "index.html is missing or older"},
		{"page missing", func(t *testing.T, r results.RunDir) { os.Remove(r.IndexPath()) }, true, "index.html is missing"},
		{"a field added within the schema", func(t *testing.T, r results.RunDir) {
			data, _ := os.ReadFile(r.SummaryPath())
			mustWrite(t, r.SummaryPath(), strings.Replace(string(data), "{", `{"added_later": 1,`, 1))
			touch(t, r.IndexPath(), 5)
		}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := writeRun(t, t.TempDir(), runA1, baselineYAML, baselineSpec(0, 300), fixtureNow)
			withReport(t, run, nil)
			tt.change(t, run)
			s, why := currentSummary(run)
			if (s != nil) != tt.current || (tt.why == "") != (why == "") || !strings.Contains(why, tt.why) {
				t.Errorf("summary %v, why %q; want summary %v, why containing %q", s != nil, why, tt.current, tt.why)
			}
		})
	}
}

// touch sets path's modification time seconds after now.
func touch(t *testing.T, path string, seconds int) {
	t.Helper()
	at := time.Now().Add(time.Duration(seconds) * time.Second)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	res := filepath.Join(root, "results")
	run := filepath.Join(res, "a-20260101-000000")
	mustWrite(t, filepath.Join(run, "scenario.yaml"), "x")
	mustWrite(t, filepath.Join(res, "empty", ".keep"), "")
	mustWrite(t, filepath.Join(res, ".hidden", "scenario.yaml"), "x")
	mustWrite(t, filepath.Join(res, "oldsite", IndexFile), "{}")
	mustWrite(t, filepath.Join(root, "archive", "a-20260101-000000", "env.json"), "{}")
	mustWrite(t, filepath.Join(root, "file"), "")
	mustWrite(t, filepath.Join(root, "nothing", "x.txt"), "")
	out := filepath.Join(res, "site")
	mustWrite(t, filepath.Join(out, IndexFile), "{}")
	tests := []struct {
		name    string
		inputs  []string
		want    []string // candidate dirs, relative to root
		notes   []string // parts of the notes, in order
		wantErr string
	}{
		{"a results folder", []string{res}, []string{"results/a-20260101-000000", "results/empty"},
			[]string{"skipped " + res + "/oldsite: a site", "skipped " + out + ": a site"}, ""},
		{"a run given directly", []string{run}, []string{"results/a-20260101-000000"}, nil, ""},
		{"the same run name twice", []string{run, filepath.Join(root, "archive", "a-20260101-000000")}, []string{"results/a-20260101-000000"},
			[]string{"given twice"}, ""},
		{"the same run through two inputs", []string{run, run}, []string{"results/a-20260101-000000"}, nil, ""},
		{"missing", []string{filepath.Join(root, "nope")}, nil, nil, "no such file"},
		{"a file", []string{filepath.Join(root, "file")}, nil, nil, "is a file"},
		{"a folder of no runs", []string{filepath.Join(root, "nothing")}, nil, nil, "neither a run directory"},
		{"the output itself", []string{out}, nil, nil, "the site being built"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands, notes, err := discover(tt.inputs, out)
			if tt.wantErr != "" {
				var in *InputError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &in) {
					t.Fatalf("error %v, want an InputError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cands {
				rel, _ := filepath.Rel(root, c.Dir)
				got = append(got, rel)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("candidates %v, want %v", got, tt.want)
			}
			if len(notes) != len(tt.notes) {
				t.Fatalf("notes %q, want %d", notes, len(tt.notes))
			}
			for i, n := range tt.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %q lacks %q", notes[i], n)
				}
			}
		})
	}
}

func TestFlips(t *testing.T) {
	c := func(classes ...string) []GridCell {
		var out []GridCell
		for _, cl := range classes {
			out = append(out, GridCell{Class: cl})
		}
		return out
	}
	tests := []struct {
		name  string
		cells []GridCell // newest first
		want  int
	}{
		{"steady pass", c(ClassPass, ClassPass, ClassPass), 0},
		{"one flip", c(ClassFail, ClassPass, ClassPass), 1},
		{"back and forth", c(ClassPass, ClassFail, ClassPass), 2},
		{"not run in between is no flip", c(ClassPass, ClassNotRun, ClassPass), 0},
		{"a flip across a run without it", c(ClassFail, ClassAbsent, ClassNotRun, ClassPass), 1},
		{"never judged", c(ClassNotRun, ClassAbsent), 0},
		{"no runs", nil, 0},
	}
	for _, tt := range tests {
		if got := flips(tt.cells); got != tt.want {
			t.Errorf("%s: %d flips, want %d", tt.name, got, tt.want)
		}
	}
}

func TestWithNav(t *testing.T) {
	tests := []struct {
		name, page, want string
	}{
		{"first build", "<html><body><h1>x</h1>", "<html><body>\n<!-- labrun-site:nav -->N<!-- /labrun-site:nav --><h1>x</h1>"},
		{"rebuild replaces", "<html><body>\n<!-- labrun-site:nav -->old<!-- /labrun-site:nav --><h1>x</h1>",
			"<html><body>\n<!-- labrun-site:nav -->N<!-- /labrun-site:nav --><h1>x</h1>"},
		{"no body tag", "<h1>x</h1>", "<!-- labrun-site:nav -->N<!-- /labrun-site:nav --><h1>x</h1>"},
	}
	for _, tt := range tests {
		if got := string(withNav([]byte(tt.page), []byte("N"))); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReadIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, IndexFile)
	if _, ok, err := ReadIndex(path); ok || err != nil {
		t.Errorf("no index: ok %v err %v", ok, err)
	}
	mustWrite(t, path, `{"schema":"labrun.dev/site/v0","runs":[]}`)
	if _, _, err := ReadIndex(path); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "labrun.dev/site/v0") {
		t.Errorf("older schema: %v", err)
	}
	// A site of another schema is never overwritten.
	_, err := Build(context.Background(), Options{Inputs: []string{dir}, Out: dir})
	if !errors.Is(err, ErrSchema) {
		t.Errorf("build over an index of another schema: %v", err)
	}
	mustWrite(t, path, `{"schema":"labrun.dev/site/v1","runs":[{"name":"r","added_later":true}]}`)
	idx, ok, err := ReadIndex(path)
	if err != nil || !ok || idx.Runs[0].Name != "r" {
		t.Errorf("an index with a field added within the schema: %v %v %+v", ok, err, idx)
	}
}

func TestCellFileName(t *testing.T) {
	tests := map[string]string{
		"default_glibc_single-request-reopen": "default_glibc_single-request-reopen",
		"c+nodelocaldns_glibc_none":           "c-nodelocaldns_glibc_none-",
		"../x":                                "-x-",
	}
	seen := map[string]string{}
	for id, prefix := range tests {
		got := cellFileName(id)
		if !strings.HasPrefix(got, prefix) || strings.ContainsAny(got, "/+") {
			t.Errorf("%q → %q, want a safe name starting %q", id, got, prefix)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share %q", id, other, got)
		}
		seen[got] = id
	}
	if a, b := cellFileName("a+b"), cellFileName("a/b"); a == b {
		t.Errorf("a+b and a/b share %q", a)
	}
}
