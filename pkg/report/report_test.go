package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const syntheticYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: synthetic}
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
expect:
  claims: {"1": pass, "3": fail}
  cells:
    - match: {resolver: glibc, mitigation: single-request-reopen}
      max: {shareAt5s: 0, p99: 100ms}
`

// syntheticRun is a baseline-like run: glibc delayed only without a
// mitigation, musl delayed with and without; captures for glibc.
func syntheticRun(t *testing.T) results.RunDir {
	t.Helper()
	run, err := resultstest.WriteRun(t.TempDir(), "synthetic", syntheticYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
		cs := resultstest.Cell{Lookups: 4000, InsertFailed: 0, ClashRes: 300}
		if c.Backend == "musl" || c.Mitigations.IsNone() {
			cs.Delayed, cs.EmulatorDropped = 0.03, 130
		}
		if c.Backend == "glibc" {
			cs.Capture = &results.CaptureSummary{CaptureReport: results.CaptureReport{Queries: 8000, Answers: 7900, Lookups: results.CaptureLookupStats{Count: 4000}}}
			if c.Mitigations.IsNone() {
				cs.Capture.SamePortPairs = 3900
			}
		}
		return cs, true
	})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./pkg/report -update and review the diff", path)
	}
}

func TestGoldenSummaryAndFigures(t *testing.T) {
	run := syntheticRun(t)
	a, err := analyze.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden.json", NewSummary(a))
	golden(t, "figures.golden.json", Figures(a))
}

func TestFiguresData(t *testing.T) {
	a, err := analyze.Load(syntheticRun(t))
	if err != nil {
		t.Fatal(err)
	}
	fd := Figures(a)
	if len(fd.CCDFs) != 2 || fd.CCDFs[0].Backend != "glibc" || len(fd.CCDFs[0].Series) != 2 {
		t.Fatalf("ccdfs = %+v", fd.CCDFs)
	}
	for _, c := range fd.CCDFs {
		for _, s := range c.Series {
			if s.Points[0].Y != 1 {
				t.Errorf("%s %s: CCDF starts at %g, want 1", c.Backend, s.Label, s.Points[0].Y)
			}
			for i := 1; i < len(s.Points); i++ {
				if s.Points[i].X <= s.Points[i-1].X || s.Points[i].Y > s.Points[i-1].Y {
					t.Errorf("%s %s: CCDF not monotone at %d: %v then %v", c.Backend, s.Label, i, s.Points[i-1], s.Points[i])
				}
			}
			// The share ≥ 5 s read off the CCDF matches the statistics.
			cell := a.Cell(s.Cell)
			at5 := 0.0
			for _, p := range s.Points {
				if p.X >= 4.9 {
					at5 = p.Y
					break
				}
			}
			if d := at5 - cell.Stats.ShareAtLeast5s; d > 0.002 || d < -0.002 {
				t.Errorf("%s: CCDF at 5 s = %g, stats say %g", s.Cell, at5, cell.Stats.ShareAtLeast5s)
			}
		}
	}
	if len(fd.Counters) != 3 || fd.Counters[2].Name != "emulator dropped" || fd.Counters[2].Bars[0].Value != 130 {
		t.Errorf("counters = %+v", fd.Counters)
	}
	if len(fd.QueriesPerLookup) != 2 || fd.QueriesPerLookup[0].Value != 2 {
		t.Errorf("queries per lookup = %+v", fd.QueriesPerLookup)
	}
}

func TestBuildWritesEverything(t *testing.T) {
	run := syntheticRun(t)
	a, exps, err := Build(run)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := results.ReadJSON(run.SummaryPath(), &s); err != nil {
		t.Fatalf("summary.json does not read back strictly: %v", err)
	}
	if s.Schema != SummarySchema || len(s.Cells) != 4 || len(s.Claims) != 11 {
		t.Errorf("summary: schema %q, %d cells, %d claims", s.Schema, len(s.Cells), len(s.Claims))
	}
	// claim 1 met, claim 3 broken (musl is delayed with the option: pass),
	// the glibc cell's two bounds met.
	if len(exps) != 4 || len(s.Expectations) != 4 || s.Totals.Expectations[expect.Met] != 3 || s.Totals.Expectations[expect.Broken] != 1 {
		t.Errorf("expectations: returned %+v, summary.json %+v, totals %v", exps, s.Expectations, s.Totals.Expectations)
	}
	if e := s.Expectations[1]; e.Name != "claim 3: fail" || e.Verdict != expect.Broken || e.Measured != "pass" || !strings.HasSuffix(e.Source, "synthetic/scenario.yaml:42") {
		t.Errorf("claim 3's expectation in summary.json: %+v", e)
	}
	for _, f := range []string{"ccdf-glibc.png", "ccdf-musl.png", "share-ge-5s.png", "counters.png", "queries-per-lookup.png"} {
		b, err := os.ReadFile(filepath.Join(run.PlotsDir(), f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("plots/%s: %v (PNG header %v)", f, err, bytes.HasPrefix(b, []byte("\x89PNG")))
		}
	}
	html, err := os.ReadFile(run.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<h2 id="claims">Claims</h2>`, "data:image/png;base64,", "default_glibc_single-request-reopen", "ignored by the back end: single-request-reopen",
		`<h2 id="expectations">Expectations</h2>`, `<tr class="broken"><td class="verdict">broken</td><td>claim 3: fail</td>`} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if a.Claims[0].Verdict != analyze.Pass || a.Claims[7].Verdict != analyze.Pass {
		t.Errorf("claims 1 and 8 on the synthetic run: %s, %s", a.Claims[0].Verdict, a.Claims[7].Verdict)
	}
	// The cheap exports, not the ones that read every sample again.
	for f, want := range map[string]bool{"cells.csv": true, "junit.xml": true, "bench.txt": true, "hdr": false, "perfdash": false} {
		if _, err := os.Stat(filepath.Join(run.ExportsDir(), f)); (err == nil) != want {
			t.Errorf("exports/%s: present %v, want %v", f, err == nil, want)
		}
	}
	if os.Getenv("LABRUN_KEEP_REPORT") != "" {
		t.Logf("report kept in %s", run.Dir)
		os.CopyFS(os.Getenv("LABRUN_KEEP_REPORT"), os.DirFS(run.Dir))
	}
}

func TestHTMLEscapes(t *testing.T) {
	a, err := analyze.Load(syntheticRun(t))
	if err != nil {
		t.Fatal(err)
	}
	a.Cells[0].Reason = `<script>alert("x")</script>`
	a.Claims[0].Evidence = `<img src=x onerror=alert(1)>`
	html, err := HTML(NewSummary(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>alert", "<img src=x"} {
		if strings.Contains(string(html), bad) {
			t.Errorf("index.html carries %q unescaped", bad)
		}
	}
	if !strings.Contains(string(html), "&lt;script&gt;") {
		t.Error("the escaped reason is missing")
	}
}

// A run of cells side by side says so in the page's header; one that ran
// them one at a time says nothing of it.
func TestHTMLCellsAtOnce(t *testing.T) {
	a, err := analyze.Load(syntheticRun(t))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSummary(a)
	html, err := HTML(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(html), "Cells at once") {
		t.Error("a run without cells_at_once shows cells at once")
	}
	if s.Env.Extra == nil {
		s.Env.Extra = map[string]string{}
	}
	s.Env.Extra["cells_at_once"] = "2"
	if html, err = HTML(s, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<dt>Cells at once</dt><dd>up to <strong>2</strong> of a cluster side by side") {
		t.Error("the header does not say the cells ran two at once")
	}
}

func TestStaleFiguresRemoved(t *testing.T) {
	run := syntheticRun(t)
	stale := filepath.Join(run.PlotsDir(), "ccdf-go.png")
	if err := results.WriteFile(stale, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Build(run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale figure still there: %v", err)
	}
}
