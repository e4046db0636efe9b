package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/site"
)

// The nightly's scripts are bash with jq and curl, as on GitHub's runners and
// here; a test that lacks one says so and skips.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the nightly's scripts need it (GitHub's runners have it; apt-get install %s)", tool, tool)
		}
	}
}

// script runs a repository script with args; it returns stdout, stderr and
// the exit code.
func script(t *testing.T, env []string, name string, args ...string) (string, string, int) {
	t.Helper()
	root := repoRoot(t)
	c := exec.Command(filepath.Join(root, name), args...)
	c.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.String(), stderr.String(), code
}

// TestScriptsShellcheck runs shellcheck over the nightly's scripts when it is
// installed (the workflows' run: scripts get it through actionlint).
func TestScriptsShellcheck(t *testing.T) {
	need(t, "shellcheck")
	root := repoRoot(t)
	files := []string{"hack/nightly-local.sh", "hack/kernel-modules.sh", "hack/deps.sh"}
	more, _ := filepath.Glob(filepath.Join(root, "hack", "nightly", "*.sh"))
	for _, f := range more {
		rel, _ := filepath.Rel(root, f)
		files = append(files, rel)
	}
	c := exec.Command("shellcheck", files...)
	c.Dir = root
	if out, err := c.CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", strings.Join(files, " "), err, out)
	}
}

// TestMatrixJQ: the plan job's matrix keeps the shards with cells, with what
// the jobs read from it.
func TestMatrixJQ(t *testing.T) {
	need(t, "jq")
	plan := `{"scenario":"s","shards":[
	  {"shard":"1/3","index":1,"count":3,"cells":["a","b"],"shapes":["x"],"estimate_seconds":125},
	  {"shard":"2/3","index":2,"count":3,"cells":[],"shapes":[],"estimate_seconds":0},
	  {"shard":"3/3","index":3,"count":3,"cells":["c"],"shapes":["y","z"],"estimate_seconds":30000}]}`
	c := exec.Command("jq", "-c", "-f", filepath.Join(repoRoot(t), "hack", "nightly", "matrix.jq"))
	c.Stdin = strings.NewReader(plan)
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Include []map[string]any }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := []map[string]any{
		{"shard": "1/3", "index": 1.0, "count": 3.0, "cells": 2.0, "shapes": 1.0, "estimate_minutes": 3.0, "timeout_minutes": 49.0},
		{"shard": "3/3", "index": 3.0, "count": 3.0, "cells": 1.0, "shapes": 2.0, "estimate_minutes": 500.0, "timeout_minutes": 350.0},
	}
	if !reflect.DeepEqual(got.Include, want) {
		t.Errorf("matrix\n got %v\nwant %v", got.Include, want)
	}
}

const scenarioYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: s}
workload: {resolvers: [glibc], mitigations: [none, use-vc]}
expect:
  cells:
    - match: {mitigation: none}
      max: {p99: 1ms}
    - match: {mitigation: use-vc}
      max: {p99: 1s}
`

// writeRun writes a synthetic run with its report, as labrun run leaves it:
// the none cell delayed (its p99 bound broken), the use-vc cell never reached
// when reach is false.
func writeRun(t *testing.T, root, name string, reach bool) string {
	t.Helper()
	run, err := resultstest.WriteRun(root, name, scenarioYAML, func(c scenario.Cell) (resultstest.Cell, bool) {
		if c.MitigationID() == "use-vc" {
			return resultstest.Cell{Lookups: 200}, reach
		}
		return resultstest.Cell{Lookups: 200, Delayed: 0.05}, true
	})
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
	if err := report.Write(run, a, expect.Evaluate(sc.Expect, a)); err != nil {
		t.Fatal(err)
	}
	return run.Dir
}

// TestSummaryScript: the job summary names the broken expectation, the one
// not evaluated, the cell the run owes and the shard that left no run.
func TestSummaryScript(t *testing.T) {
	need(t, "bash", "jq")
	dir := t.TempDir()
	run := writeRun(t, dir, "s-20260101-000000", false)
	shards := filepath.Join(dir, "shards")
	if err := os.MkdirAll(filepath.Join(shards, "s-20260101-000000-shard-1-of-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "plan.json")
	os.WriteFile(plan, []byte(`{"shards":[{"shard":"1/2","index":1,"count":2,"cells":["x"],"shapes":[],"estimate_seconds":1},
	  {"shard":"2/2","index":2,"count":2,"cells":["default_glibc_use-vc"],"shapes":[],"estimate_seconds":1}]}`), 0o644)
	out, stderr, code := script(t, nil, "hack/nightly/summary.sh", run, plan, shards)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"## Nightly s: s-20260101-000000 — red: expectations broken",
		"Expectations: 0 met, 1 broken, 1 not evaluated.",
		"### Broken expectations (1)\n\n- `mitigation=none: p99 <= 1ms`: measured ",
		"### Expectations not evaluated (1)\n\n- `mitigation=use-vc: p99 <= 1s`: ",
		"### Cells the run owes (1)\n\n- `default_glibc_use-vc` (not-run): no status file",
		"### Shards that left no run (1)\n\n- shard 2/2: 1 cells: `default_glibc_use-vc`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	out, _, code = script(t, nil, "hack/nightly/summary.sh", filepath.Join(dir, "none"))
	if code != 0 || !strings.Contains(out, "no merged run") {
		t.Errorf("without a merged run: exit %d\n%s", code, out)
	}
}

// files lists the files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestFetchSite: what fetch-site.sh brings back from a published site is
// what `labrun site` needs to keep every earlier run with its page; with
// KEEP_PAGES the older runs keep their numbers and lose their pages; nothing
// published is a first night; a server error fails rather than drop history.
func TestFetchSite(t *testing.T) {
	need(t, "bash", "jq", "curl")
	dir := t.TempDir()
	runs := filepath.Join(dir, "results")
	r1 := writeRun(t, runs, "s-20260101-000000", true)
	r2 := writeRun(t, runs, "s-20260102-000000", true)
	pub := filepath.Join(dir, "published")
	if _, err := site.Build(context.Background(), site.Options{Inputs: []string{r1, r2}, Out: pub}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(pub)))
	defer srv.Close()
	r3 := writeRun(t, filepath.Join(dir, "new"), "s-20260103-000000", true)

	t.Run("every page", func(t *testing.T) {
		got := filepath.Join(dir, "fetched")
		if _, stderr, code := script(t, nil, "hack/nightly/fetch-site.sh", srv.URL+"/", got); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var want []string
		for _, f := range files(t, pub) {
			if f == "index.json" || strings.HasPrefix(f, "runs/") {
				want = append(want, f)
			}
		}
		if !slices.ContainsFunc(want, func(f string) bool { return strings.Contains(f, "/plots/") }) {
			t.Fatalf("the published site has no run figures to fetch: %v", want)
		}
		if g := files(t, got); !reflect.DeepEqual(g, want) {
			t.Errorf("fetched\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
		}
		res, err := site.Build(context.Background(), site.Options{Inputs: []string{r3}, Out: got})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Kept) != 2 {
			t.Errorf("kept %v, want the two published runs", res.Kept)
		}
		for _, r := range res.Index.Runs {
			if r.Page == "" || strings.Contains(r.Note, "page is missing") {
				t.Errorf("run %s lost its page: %q", r.Name, r.Note)
			}
		}
	})
	t.Run("KEEP_PAGES=1", func(t *testing.T) {
		got := filepath.Join(dir, "fetched1")
		if _, stderr, code := script(t, []string{"KEEP_PAGES=1"}, "hack/nightly/fetch-site.sh", srv.URL, got); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		res, err := site.Build(context.Background(), site.Options{Inputs: []string{r3}, Out: got})
		if err != nil {
			t.Fatal(err)
		}
		pages := map[string]bool{}
		for _, r := range res.Index.Runs {
			pages[r.Name] = r.Page != ""
		}
		if want := map[string]bool{"s-20260103-000000": true, "s-20260102-000000": true, "s-20260101-000000": false}; !reflect.DeepEqual(pages, want) {
			t.Errorf("runs with a page: %v, want %v", pages, want)
		}
	})
	t.Run("nothing published", func(t *testing.T) {
		empty := httptest.NewServer(http.FileServer(http.Dir(t.TempDir())))
		defer empty.Close()
		got := filepath.Join(dir, "first")
		_, stderr, code := script(t, nil, "hack/nightly/fetch-site.sh", empty.URL, got)
		if code != 0 || !strings.Contains(stderr, "nothing published") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		if f := files(t, got); len(f) != 0 {
			t.Errorf("a first night fetched %v", f)
		}
	})
	t.Run("server error", func(t *testing.T) {
		broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		defer broken.Close()
		_, stderr, code := script(t, []string{"RETRIES=0"}, "hack/nightly/fetch-site.sh", broken.URL, filepath.Join(dir, "broken"))
		if code == 0 || !strings.Contains(stderr, "HTTP 503") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}
