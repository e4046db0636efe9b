package merge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

// mergeYAML has two cluster entries, a cluster-level mitigation, and cells
// that do not run (autopath has no place in kube-dns).
const mergeYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: m}
clusters: [{name: a}, {name: c, dns: {server: kube-dns}}]
workload:
  resolvers: [glibc, musl]
  mitigations: [none, single-request-reopen, autopath]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
expect:
  claims: {"1": pass}
`

// raceLike: delays where the race would bite, a capture for glibc.
func raceLike(c scenario.Cell) (resultstest.Cell, bool) {
	cs := resultstest.Cell{Lookups: 600, ClashRes: 50}
	if c.Backend == "musl" || c.Mitigations.IsNone() {
		cs.Delayed, cs.EmulatorDropped = 0.03, 40
	}
	if c.Backend == "glibc" {
		cs.Capture = &results.CaptureSummary{CaptureReport: results.CaptureReport{Queries: 1200, Answers: 1190, Lookups: results.CaptureLookupStats{Count: 600}}}
	}
	return cs, true
}

// whole writes the run the shards are cut from.
func whole(t *testing.T, root string) results.RunDir {
	t.Helper()
	run, err := resultstest.WriteRun(root, "whole", mergeYAML, raceLike)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func shards(t *testing.T, run results.RunDir, root string, n int) []results.RunDir {
	t.Helper()
	s, err := resultstest.Shards(run, root, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dirs(runs []results.RunDir) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Dir)
	}
	return out
}

// analysisJSON is a run's analysis as summary.json has it, but for what
// must differ between two runs of the same cells: the name and env.json.
func analysisJSON(t *testing.T, a *analyze.Analysis) []byte {
	t.Helper()
	s := report.NewSummary(a)
	s.Run, s.Env = "", results.Env{}
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func load(t *testing.T, run results.RunDir) *analyze.Analysis {
	t.Helper()
	a, err := analyze.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// firstDiff shows where two texts part.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return "line " + la[i] + "\n  vs " + lb[i]
		}
	}
	return "lengths differ"
}

// TestMergeEqualsOneRun: the analysis of merged shards is the analysis of
// the run they were cut from.
func TestMergeEqualsOneRun(t *testing.T) {
	tests := []struct {
		name  string
		parts func(t *testing.T, run results.RunDir, root string) []string
	}{
		{"two shards", func(t *testing.T, run results.RunDir, root string) []string { return dirs(shards(t, run, root, 2)) }},
		{"three shards", func(t *testing.T, run results.RunDir, root string) []string { return dirs(shards(t, run, root, 3)) }},
		{"three shards in reverse order", func(t *testing.T, run results.RunDir, root string) []string {
			d := dirs(shards(t, run, root, 3))
			slices.Reverse(d)
			return d
		}},
		{"every shard records the not-run cells", func(t *testing.T, run results.RunDir, root string) []string {
			ss := shards(t, run, root, 3)
			for _, s := range ss[1:] {
				for _, c := range notRunCells(t, run) {
					if _, err := results.CopyCell(s, run, c, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			return dirs(ss)
		}},
		{"a run and its complement, no shard.json", func(t *testing.T, run results.RunDir, root string) []string {
			ss := shards(t, run, root, 2)
			for _, s := range ss {
				if err := os.Remove(s.ShardPath()); err != nil {
					t.Fatal(err)
				}
			}
			return dirs(ss)
		}},
		{"one run alone", func(t *testing.T, run results.RunDir, root string) []string { return []string{run.Dir} }},
	}
	run := whole(t, t.TempDir())
	want := analysisJSON(t, load(t, run))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			inputs := tt.parts(t, run, filepath.Join(root, "shards"))
			out := filepath.Join(root, "merged")
			res, err := Merge(context.Background(), Options{Inputs: inputs, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Missing) != 0 {
				t.Errorf("missing cells in a whole merge: %v", res.Missing)
			}
			for what, a := range map[string]*analyze.Analysis{"merge's analysis": res.Analysis, "merged run reloaded": load(t, res.Run)} {
				if got := analysisJSON(t, a); !bytes.Equal(got, want) {
					t.Errorf("%s differs from the whole run's: %s", what, firstDiff(got, want))
				}
			}
			if res.Analysis.Run != "merged" {
				t.Errorf("analysis names the run %q, want merged", res.Analysis.Run)
			}
			for _, f := range []string{"summary.json", "index.html", "exports/junit.xml", "envs/" + filepath.Base(inputs[0]) + ".json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("merged run lacks %s: %v", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "shard.json")); err == nil {
				t.Error("the merged run has a shard.json")
			}
			env, _, err := res.Run.ReadEnv()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, in := range inputs {
				names = append(names, filepath.Base(in))
			}
			if got := env.Extra[results.EnvMergedFrom]; got != strings.Join(names, ",") {
				t.Errorf("env.json extra.%s = %q, want %q", results.EnvMergedFrom, got, strings.Join(names, ","))
			}
			noLeftovers(t, root)
		})
	}
}

func notRunCells(t *testing.T, run results.RunDir) []string {
	t.Helper()
	s, err := run.ReadScenario()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range s.Expand() {
		if !c.Runs() {
			out = append(out, c.ID)
		}
	}
	if len(out) == 0 {
		t.Fatal("the test scenario has no not-run cell")
	}
	return out
}

// noLeftovers fails when a merge left its hidden working directory.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".labrun-merge-*"))
	if len(m) > 0 {
		t.Errorf("temporary directories left: %v", m)
	}
}

// TestMergeLinksOrCopies: files are hard-linked by default and copied on
// request, and the merged run's files are the inputs' bytes.
func TestMergeLinksOrCopies(t *testing.T) {
	run := whole(t, t.TempDir())
	for _, copyAll := range []bool{false, true} {
		root := t.TempDir()
		ss := shards(t, run, filepath.Join(root, "shards"), 2)
		res, err := Merge(context.Background(), Options{Inputs: dirs(ss), Out: filepath.Join(root, "merged"), Copy: copyAll})
		if err != nil {
			t.Fatal(err)
		}
		if copyAll && (res.Files.Linked != 0 || res.Files.Copied == 0) {
			t.Errorf("copy: %+v", res.Files)
		}
		if !copyAll && res.Files.Linked == 0 {
			t.Errorf("link: nothing linked (%+v)", res.Files)
		}
		src, dst := filepath.Join(ss[0].Dir, "raw", "a_glibc_none", "probe-0.jsonl"), filepath.Join(res.Run.Dir, "raw", "a_glibc_none", "probe-0.jsonl")
		a, err1 := os.ReadFile(src)
		b, err2 := os.ReadFile(dst)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("copy %v: %s and %s differ (%v, %v)", copyAll, src, dst, err1, err2)
		}
	}
}

// TestMergeMissing: absent and incomplete shards give incomplete cells with
// the reason, and notes that name them; the merge still succeeds.
func TestMergeMissing(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		drop   []int          // shards (1-based) not given
		unfin  map[int]string // shard → a planned cell whose files are removed
		reason map[string]string
		notes  []string
		plain  bool // no shard.json: a run and its complement
	}{
		{
			name: "shard 2 of 3 absent", n: 3, drop: []int{2},
			reason: map[string]string{"*2": "shard 2/3 gave no result"},
			notes:  []string{"shard 2/3 missing: 3 cells", "3 cells without a result, recorded as incomplete:"},
		},
		{
			name: "shards 2 and 4 of 4 absent", n: 4, drop: []int{2, 4},
			reason: map[string]string{"*2": "shards 2/4, 4/4 gave no result; the cell was in one of them", "*4": "shards 2/4, 4/4 gave no result; the cell was in one of them"},
			notes:  []string{"shards 2/4, 4/4 missing: 5 cells between them"},
		},
		{
			name: "shard 3 of 3 stopped before a cell", n: 3, unfin: map[int]string{3: "c_musl_none"},
			reason: map[string]string{"c_musl_none": "shard 3/3 (run ", "_": "it stopped before finishing it"},
			notes:  []string{"shard 3/3 (run ", ") incomplete: 1 of its 3 cells have no status"},
		},
		{
			name: "a run and its complement, a cell in neither", n: 2, plain: true, unfin: map[int]string{2: "a_glibc_single-request-reopen"},
			reason: map[string]string{"a_glibc_single-request-reopen": "none of the runs merged (whole-shard-1, whole-shard-2) has a status for this cell"},
			notes:  []string{"1 cell without a result, recorded as incomplete:"},
		},
		{
			name: "shard 1 absent: its not-run cells are not lost", n: 2, drop: []int{1},
			reason: map[string]string{"*1": "shard 1/2 gave no result"},
			notes:  []string{"shard 1/2 missing: 5 cells"},
		},
	}
	run := whole(t, t.TempDir())
	w := load(t, run)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ss := shards(t, run, filepath.Join(root, "shards"), tt.n)
			var inputs []string
			wantMissing := map[string]string{} // cell → reason prefix
			for i, s := range ss {
				plan, _, err := s.ReadShard()
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(tt.drop, i+1) {
					for _, c := range plan.Cells {
						wantMissing[c] = tt.reason["*"+strconv.Itoa(plan.Index)]
					}
					continue
				}
				if c, ok := tt.unfin[i+1]; ok {
					files, err := s.CellFiles(c)
					if err != nil || len(files) == 0 {
						t.Fatalf("cell %s of shard %d: %v %v", c, i+1, files, err)
					}
					for _, f := range files {
						os.Remove(filepath.Join(s.Dir, f))
					}
					wantMissing[c] = tt.reason[c]
				}
				if tt.plain {
					if err := os.Remove(s.ShardPath()); err != nil {
						t.Fatal(err)
					}
				}
				inputs = append(inputs, s.Dir)
			}
			res, err := Merge(context.Background(), Options{Inputs: inputs, Out: filepath.Join(root, "merged")})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, st := range res.Missing {
				got[st.Cell] = st.Reason
			}
			if len(got) != len(wantMissing) {
				t.Errorf("missing %v, want the cells %v", got, wantMissing)
			}
			a := res.Analysis
			for cell, prefix := range wantMissing {
				if !strings.HasPrefix(got[cell], prefix) {
					t.Errorf("cell %s: reason %q, want it to start %q", cell, got[cell], prefix)
				}
				if s := tt.reason["_"]; s != "" && !strings.Contains(got[cell], s) {
					t.Errorf("cell %s: reason %q lacks %q", cell, got[cell], s)
				}
				st, ok, err := res.Run.ReadStatus(cell)
				if err != nil || !ok || st.State != results.Incomplete || st.Reason != got[cell] {
					t.Errorf("cell %s: status %+v %v %v, want incomplete with the reason", cell, st, ok, err)
				}
				if c := a.Cell(cell); c == nil || c.State != results.Incomplete || c.Reason != got[cell] || !c.Failed() {
					t.Errorf("cell %s: analysed as %+v, want incomplete and failed", cell, c)
				}
			}
			notes := strings.Join(res.Notes, "\n")
			for _, n := range tt.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, notes)
				}
			}
			for cell := range wantMissing {
				if !strings.Contains(notes, "  "+cell+": ") {
					t.Errorf("notes do not name the missing cell %s:\n%s", cell, notes)
				}
			}
			// The cells that did come are those of the whole run.
			for _, c := range a.Cells {
				if _, gone := wantMissing[c.ID]; gone {
					continue
				}
				if wc := w.Cell(c.ID); wc.State != c.State || !statsEqual(wc, c) {
					t.Errorf("cell %s: %s %+v, whole run %s %+v", c.ID, c.State, c.Stats, wc.State, wc.Stats)
				}
			}
		})
	}
}

func statsEqual(a, b *analyze.Cell) bool {
	ja, _ := json.Marshal(a.Stats)
	jb, _ := json.Marshal(b.Stats)
	return bytes.Equal(ja, jb)
}

// TestMergeRefuses: inputs that cannot be merged give an InputError that
// names what differs; nothing is written.
func TestMergeRefuses(t *testing.T) {
	other := func(yaml string) func(t *testing.T, root string, ss []results.RunDir) []string {
		return func(t *testing.T, root string, ss []results.RunDir) []string {
			r, err := resultstest.WriteRun(root, "other", yaml, raceLike)
			if err != nil {
				t.Fatal(err)
			}
			return []string{ss[0].Dir, r.Dir}
		}
	}
	setEnv := func(i int, f func(*results.Env)) func(t *testing.T, root string, ss []results.RunDir) []string {
		return func(t *testing.T, root string, ss []results.RunDir) []string {
			e, _, err := ss[i].ReadEnv()
			if err != nil {
				t.Fatal(err)
			}
			f(&e)
			if err := ss[i].WriteEnv(e); err != nil {
				t.Fatal(err)
			}
			return dirs(ss)
		}
	}
	tests := []struct {
		name   string
		inputs func(t *testing.T, root string, ss []results.RunDir) []string
		out    func(t *testing.T, root string) string // default: root/merged
		want   []string
		usage  bool // an InputError
	}{
		{
			name:   "different scenario name",
			inputs: other(strings.Replace(mergeYAML, "name: m}", "name: n}", 1)),
			want:   []string{"/whole-shard-1 and ", "/other have different scenarios: metadata.name is \"m\" in ", "\"n\" in "}, usage: true,
		},
		{
			name:   "different cells",
			inputs: other(strings.Replace(mergeYAML, "[glibc, musl]", "[glibc, musl, go]", 1)),
			want:   []string{"have different scenarios: their cell lists differ (12 and 18 cells; only in ", "a_go_none"}, usage: true,
		},
		{
			name:   "same cells, other settings",
			inputs: other(strings.Replace(mergeYAML, `profile: "5.0-5.5"`, `profile: "5.0-5.5", window: 2ms`, 1)),
			want:   []string{`have different scenarios: the same cells, but the resolved scenarios differ at line `, `"window: 1ms" in `, `"window: 2ms" in `}, usage: true,
		},
		{
			name: "different kind module",
			inputs: setEnv(1, func(e *results.Env) {
				e.Kind = "v0.99.0"
			}),
			want: []string{"were made by different labrun builds: kind module linked into labrun (env.json kind) is not recorded in ", `and "v0.99.0" in `}, usage: true,
		},
		{
			name: "different labrun version",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				setEnv(0, func(e *results.Env) { e.Extra[results.EnvLabrunVersion] = "v1.0.0" })(t, root, ss)
				return setEnv(1, func(e *results.Env) { e.Extra[results.EnvLabrunVersion] = "v1.1.0" })(t, root, ss)
			},
			want: []string{`labrun version (env.json extra.labrun_version) is "v1.0.0" in `, `"v1.1.0" in `}, usage: true,
		},
		{
			name: "overlapping complete cell",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				if _, err := results.CopyCell(ss[1], ss[0], "a_glibc_none", false); err != nil {
					t.Fatal(err)
				}
				return dirs(ss)
			},
			want: []string{"cell a_glibc_none has a status in both ", "whole-shard-1 (complete) and ", "whole-shard-2 (complete)"}, usage: true,
		},
		{
			name: "not-run in one, complete in the other",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				if err := ss[1].WriteStatus(results.Status{Cell: "a_glibc_none", State: results.NotRun, Reason: "host: no"}); err != nil {
					t.Fatal(err)
				}
				return dirs(ss)
			},
			want: []string{"cell a_glibc_none has a status in both ", "(not-run: host: no)"}, usage: true,
		},
		{
			name:   "output exists and is not empty",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string { return dirs(ss) },
			out: func(t *testing.T, root string) string {
				out := filepath.Join(root, "merged")
				os.MkdirAll(out, 0o755)
				os.WriteFile(filepath.Join(out, "keep"), nil, 0o644)
				return out
			},
			want: []string{"/merged exists and is not empty; merge never writes over a run"}, usage: true,
		},
		{
			name:   "output is inside an input",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string { return dirs(ss) },
			out: func(t *testing.T, root string) string {
				return filepath.Join(root, "shards", "whole-shard-1", "merged")
			},
			want: []string{"is inside the run "}, usage: true,
		},
		{
			name:   "not a run",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string { return []string{ss[0].Dir, t.TempDir()} },
			want:   []string{" is not a run directory: it has no scenario.yaml"}, usage: true,
		},
		{
			name: "absent input",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				return []string{filepath.Join(root, "nope")}
			},
			want: []string{"nope"}, usage: true,
		},
		{
			name: "a run twice",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				return []string{ss[0].Dir, ss[1].Dir, ss[0].Dir + "/"}
			},
			want: []string{"given twice"}, usage: true,
		},
		{
			name: "shards of different splits",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				if err := ss[1].WriteShard(results.Shard{Index: 2, Count: 3}); err != nil {
					t.Fatal(err)
				}
				return dirs(ss)
			},
			want: []string{"are shards of different splits: 1/2 and 2/3"}, usage: true,
		},
		{
			name: "a shard twice",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				if err := ss[1].WriteShard(results.Shard{Index: 1, Count: 2}); err != nil {
					t.Fatal(err)
				}
				return dirs(ss)
			},
			want: []string{"are both shard 1/2"}, usage: true,
		},
		{
			name: "nothing to merge",
			inputs: func(t *testing.T, root string, ss []results.RunDir) []string {
				var out []string
				for _, s := range ss {
					os.RemoveAll(filepath.Join(s.Dir, "status"))
					out = append(out, s.Dir)
				}
				return out
			},
			want: []string{"none of the 2 runs has a cell result"},
		},
	}
	run := whole(t, t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ss := shards(t, run, filepath.Join(root, "shards"), 2)
			inputs := tt.inputs(t, root, ss)
			out := filepath.Join(root, "merged")
			if tt.out != nil {
				out = tt.out(t, root)
			}
			_, err := Merge(context.Background(), Options{Inputs: inputs, Out: out})
			if err == nil {
				t.Fatal("merged")
			}
			var in *InputError
			if got := errors.As(err, &in); got != tt.usage {
				t.Errorf("InputError %v, want %v: %v", got, tt.usage, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tt.out == nil {
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s written by a refused merge", out)
				}
			}
			noLeftovers(t, filepath.Dir(out))
		})
	}
}

// TestMergeInterrupted: a cancelled merge leaves no run and no temporary
// directory; an empty output directory is used.
func TestMergeInterrupted(t *testing.T) {
	root := t.TempDir()
	ss := shards(t, whole(t, root), filepath.Join(root, "shards"), 2)
	out := filepath.Join(root, "merged")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Merge(ctx, Options{Inputs: dirs(ss), Out: out}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled merge: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a cancelled merge wrote %s", out)
	}
	noLeftovers(t, root)

	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), Options{Inputs: dirs(ss), Out: out}); err != nil {
		t.Fatalf("into an empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Error(err)
	}
}

// TestJoinEnv: the merged env.json joins the inputs' facts; each input's is
// kept under envs/, a name used twice made unique.
func TestJoinEnv(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ins := []*input{
		{name: "r", hasEnv: true, env: results.Env{Started: t0.Add(time.Hour), Kernel: "Linux 6.8", Kubernetes: "v1.36.1", Emulator: false,
			Images: []results.Image{{Name: "a", Digest: "sha256:1"}}, Extra: map[string]string{"clusters": "lab-a", "host_IPVS": "present"}}},
		{name: "s"},
		{name: "r", hasEnv: true, env: results.Env{Started: t0, Kernel: "Linux 6.18", Kubernetes: "v1.36.1, v1.35.0", Emulator: true,
			Images: []results.Image{{Name: "a", Digest: "sha256:1"}, {Name: "b"}}, Extra: map[string]string{"clusters": "lab-b,lab-a", "host_IPVS": "present"}}},
	}
	got := joinEnv(ins)
	want := results.Env{Started: t0, Kernel: "Linux 6.8, Linux 6.18", Kubernetes: "v1.36.1, v1.35.0", Emulator: true,
		Images: []results.Image{{Name: "a", Digest: "sha256:1"}, {Name: "b"}},
		Extra:  map[string]string{"clusters": "lab-a,lab-b", "host_IPVS": "present", results.EnvMergedFrom: "r,s,r"}}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("joinEnv:\n got %s\nwant %s", gj, wj)
	}

	root := t.TempDir()
	for i, in := range ins {
		in.run = results.RunDir{Dir: filepath.Join(root, "in", string(rune('0'+i)), in.name)}
		if in.hasEnv {
			if err := in.run.WriteEnv(in.env); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "scenario.yaml"), []byte(mergeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	ins[0].run.Dir = root // its scenario.yaml
	ins[0].env.Extra = nil
	if err := ins[0].run.WriteEnv(ins[0].env); err != nil {
		t.Fatal(err)
	}
	work := results.RunDir{Dir: filepath.Join(root, "out")}
	if err := writeHead(work, ins); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"r.json", "r-3.json"} {
		if _, err := os.Stat(filepath.Join(work.EnvsDir(), f)); err != nil {
			t.Errorf("envs/%s: %v", f, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(work.EnvsDir(), "*")); len(m) != 2 {
		t.Errorf("envs/ holds %v, want r.json and r-3.json", m)
	}
}
