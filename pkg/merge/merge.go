// Package merge joins runs of one scenario into one run directory: the
// shards of a sharded run (labrun run --shard i/N, each with shard.json), or
// a run and its later complement. The merged run is an ordinary run:
// report, compare, export and site read it as if its cells had run in one
// piece (docs/merge.md).
//
// The rules:
//   - every input is a run directory with a scenario.yaml; their resolved
//     scenarios are the same, and so are the labrun builds that made them
//     (env.json's kind, and its extra labrun_version when recorded);
//   - a cell has a status in at most one input, except a not-run status
//     repeated word for word (kept once);
//   - each cell's files (raw, counters, captures, status) are hard-linked,
//     or copied across file systems; scenario.yaml comes from the first
//     input; env.json is the inputs' env.json joined (results.EnvMergedFrom)
//     and each is kept whole under envs/;
//   - a cell the scenario runs that no input has a status for is recorded as
//     incomplete, with the shard that owed it when shard.json files tell;
//   - the output is built in a hidden sibling directory, its report
//     included, and renamed into place last: an interrupted merge leaves no
//     run that looks complete.
package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Options say what to merge.
type Options struct {
	Inputs []string // run directories
	Out    string   // the merged run's directory: absent or empty
	// Copy copies every file, even where a hard link would do.
	Copy bool
}

// InputError means the inputs cannot be merged as given: the user's to fix.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error { return &InputError{fmt.Errorf(format, args...)} }

// Result is the merged run, its analysis, and what the merge found.
type Result struct {
	Run          results.RunDir
	Analysis     *analyze.Analysis
	Expectations []expect.Result // the scenario's expect: block judged on the merged run
	// Missing are the incomplete statuses the merge wrote for cells that no
	// input has a result for, in the scenario's order.
	Missing []results.Status
	// Notes say what the merge found, one line each: absent and incomplete
	// shards, inputs with nothing to give, repeated not-run statuses.
	Notes []string
	Files results.Transfer
	Cells int // cells taken from the inputs
}

// input is one run to merge.
type input struct {
	path    string // as given
	name    string // the run's name: its directory's base name
	run     results.RunDir
	sc      *scenario.Scenario
	canon   []byte // the scenario re-marshalled
	env     results.Env
	hasEnv  bool
	shard   results.Shard
	isShard bool
	cells   []string // with a status file
}

// owned is the input that gives a cell, and the cell's status there.
type owned struct {
	in *input
	st results.Status
}

// Merge joins the runs of o.Inputs into o.Out, builds its report (as
// labrun report does) and judges its scenario's expectations. Inputs that
// cannot be merged give an *InputError.
func Merge(ctx context.Context, o Options) (*Result, error) {
	if len(o.Inputs) == 0 {
		return nil, inputErr("merge: no run to merge")
	}
	if o.Out == "" {
		return nil, inputErr("merge: no output directory (-o)")
	}
	out := filepath.Clean(o.Out)
	if err := checkOut(out); err != nil {
		return nil, err
	}
	ins, err := readInputs(o.Inputs, out)
	if err != nil {
		return nil, err
	}
	if err := sameScenario(ins); err != nil {
		return nil, err
	}
	if err := sameLabrun(ins); err != nil {
		return nil, err
	}
	if err := checkShards(ins); err != nil {
		return nil, err
	}
	res := &Result{}
	owners, err := assign(ins, res)
	if err != nil {
		return nil, err
	}
	if len(owners) == 0 {
		return nil, fmt.Errorf("merge: none of the %d runs has a cell result (a status file): nothing to merge", len(ins))
	}
	res.Cells = len(owners)
	missing(ins, owners, res)
	if err := build(ctx, out, ins, owners, o.Copy, res); err != nil {
		return nil, err
	}
	return res, nil
}

// checkOut refuses an output that exists and is not an empty directory: a
// merge never writes over a run.
func checkOut(out string) error {
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("merge: output %s: %w", out, err)
	case !fi.IsDir():
		return inputErr("merge: output %s exists and is a file; give a new directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("merge: output %s: %w", out, err)
	}
	if len(entries) > 0 {
		return inputErr("merge: output %s exists and is not empty; merge never writes over a run: give a new directory", out)
	}
	return nil
}

func readInputs(paths []string, out string) ([]*input, error) {
	absOut, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("merge: output %s: %w", out, err)
	}
	var ins []*input
	for _, p := range paths {
		run, err := results.Open(p)
		if err != nil {
			return nil, &InputError{fmt.Errorf("merge: %w", err)}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("merge: %s: %w", p, err)
		}
		if _, err := os.Stat(run.ScenarioPath()); err != nil {
			return nil, inputErr("merge: %s is not a run directory: it has no scenario.yaml", p)
		}
		if rel, err := filepath.Rel(abs, absOut); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
			return nil, inputErr("merge: output %s is inside the run %s; give a directory outside every input", out, p)
		}
		for _, prev := range ins {
			if sameDir(prev.path, p) {
				return nil, inputErr("merge: run %s given twice (as %s and %s)", p, prev.path, p)
			}
		}
		in := &input{path: p, name: filepath.Base(abs), run: run}
		if in.sc, err = run.ReadScenario(); err != nil {
			return nil, inputErr("merge: run %s: %w", p, err)
		}
		if in.canon, err = in.sc.Marshal(); err != nil {
			return nil, fmt.Errorf("merge: run %s: %w", p, err)
		}
		if in.env, in.hasEnv, err = run.ReadEnv(); err != nil {
			return nil, inputErr("merge: run %s: %w", p, err)
		}
		if in.shard, in.isShard, err = run.ReadShard(); err != nil {
			return nil, inputErr("merge: run %s: %w", p, err)
		}
		if in.cells, err = run.StatusCells(); err != nil {
			return nil, fmt.Errorf("merge: run %s: %w", p, err)
		}
		ins = append(ins, in)
	}
	return ins, nil
}

// sameScenario compares the resolved scenarios (re-marshalled, so layout
// and comments do not count) with the first input's.
func sameScenario(ins []*input) error {
	a := ins[0]
	for _, b := range ins[1:] {
		if bytes.Equal(a.canon, b.canon) {
			continue
		}
		return inputErr("merge: runs %s and %s have different scenarios: %s", a.path, b.path, scenarioDiff(a, b))
	}
	return nil
}

// scenarioDiff says how two scenarios differ, most telling first.
func scenarioDiff(a, b *input) string {
	if na, nb := a.sc.Metadata.Name, b.sc.Metadata.Name; na != nb {
		return fmt.Sprintf("metadata.name is %q in %s and %q in %s", na, a.path, nb, b.path)
	}
	ida, idb := cellIDs(a.sc), cellIDs(b.sc)
	if !slices.Equal(ida, idb) {
		var parts []string
		if only := without(ida, idb); len(only) > 0 {
			parts = append(parts, "only in "+a.path+": "+listSome(only))
		}
		if only := without(idb, ida); len(only) > 0 {
			parts = append(parts, "only in "+b.path+": "+listSome(only))
		}
		if len(parts) == 0 {
			parts = append(parts, "the same cells in another order")
		}
		return fmt.Sprintf("their cell lists differ (%d and %d cells; %s)", len(ida), len(idb), strings.Join(parts, "; "))
	}
	la, lb := strings.Split(string(a.canon), "\n"), strings.Split(string(b.canon), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("the same cells, but the resolved scenarios differ at line %d: %q in %s, %q in %s",
				i+1, strings.TrimSpace(la[i]), a.path, strings.TrimSpace(lb[i]), b.path)
		}
	}
	return fmt.Sprintf("the resolved scenarios have %d and %d lines", len(la), len(lb))
}

func cellIDs(s *scenario.Scenario) []string {
	var ids []string
	for _, c := range s.Expand() {
		ids = append(ids, c.ID)
	}
	return ids
}

// without is the members of a not in b, in a's order.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// listSome lists up to three items and counts the rest.
func listSome(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:3], ", "), len(items)-3)
}

// buildFact is a fact of env.json that tells which labrun build made a run.
type buildFact struct {
	what string
	of   func(results.Env) string
}

var buildFacts = []buildFact{
	{"labrun version (env.json extra." + results.EnvLabrunVersion + ")", func(e results.Env) string { return e.Extra[results.EnvLabrunVersion] }},
	{"kind module linked into labrun (env.json kind)", func(e results.Env) string { return e.Kind }},
}

// sameLabrun refuses runs made by different labrun builds, as far as
// env.json tells. A run without env.json cannot be checked: a note says so.
func sameLabrun(ins []*input) error {
	var first *input
	for _, b := range ins {
		if !b.hasEnv {
			continue
		}
		if first == nil {
			first = b
			continue
		}
		for _, f := range buildFacts {
			va, vb := f.of(first.env), f.of(b.env)
			if va != vb {
				return inputErr("merge: runs %s and %s were made by different labrun builds: %s is %s in %s and %s in %s",
					first.path, b.path, f.what, recorded(va), first.path, recorded(vb), b.path)
			}
		}
	}
	return nil
}

func recorded(v string) string {
	if v == "" {
		return "not recorded"
	}
	return strconv.Quote(v)
}

// checkShards refuses shards of different splits and a shard given twice.
func checkShards(ins []*input) error {
	var first *input
	byIndex := map[int]*input{}
	for _, in := range ins {
		if !in.isShard {
			continue
		}
		s := in.shard
		if s.Count < 1 || s.Index < 1 || s.Index > s.Count {
			return inputErr("merge: run %s: shard.json says shard %s; want i/N with 1 ≤ i ≤ N", in.path, s)
		}
		if first == nil {
			first = in
		} else if s.Count != first.shard.Count {
			return inputErr("merge: runs %s and %s are shards of different splits: %s and %s", first.path, in.path, first.shard, s)
		}
		if prev, ok := byIndex[s.Index]; ok {
			return inputErr("merge: runs %s and %s are both shard %s; give one of them", prev.path, in.path, s)
		}
		byIndex[s.Index] = in
	}
	return nil
}

// assign gives each cell with a status to the one input that has it.
func assign(ins []*input, res *Result) (map[string]owned, error) {
	owners := map[string]owned{}
	repeated := 0
	for _, in := range ins {
		if len(in.cells) == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("run %s has no cell result (no status file)", in.path))
		}
		for _, cell := range in.cells {
			st, _, err := in.run.ReadStatus(cell)
			if err != nil {
				return nil, inputErr("merge: run %s: %w", in.path, err)
			}
			prev, ok := owners[cell]
			if !ok {
				owners[cell] = owned{in: in, st: st}
				continue
			}
			if sameNotRun(prev.st, st) {
				repeated++
				continue
			}
			return nil, inputErr("merge: cell %s has a status in both %s (%s) and %s (%s); the runs merged must hold disjoint cells",
				cell, prev.in.path, stateText(prev.st), in.path, stateText(st))
		}
	}
	if repeated > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d not-run statuses found in more than one run, the same in each: kept once", repeated))
	}
	return owners, nil
}

// sameNotRun reports whether two statuses are one not-run status.
func sameNotRun(a, b results.Status) bool {
	return a.State == results.NotRun && b.State == results.NotRun && a.Cell == b.Cell && a.Reason == b.Reason &&
		a.Probes == b.Probes && a.Expected == b.Expected && a.Collected == b.Collected &&
		a.Started.Equal(b.Started) && a.Finished.Equal(b.Finished)
}

func stateText(s results.Status) string {
	if s.Reason == "" {
		return string(s.State)
	}
	return string(s.State) + ": " + s.Reason
}

// missing records, as incomplete, every cell the scenario runs that no
// input has a status for, with who owed it, and notes the absent and the
// incomplete shards.
func missing(ins []*input, owners map[string]owned, res *Result) {
	count := 0
	present := map[int]bool{}
	planned := map[string]*input{} // cell → the present shard planned to run it
	for _, in := range ins {
		if in.isShard {
			count = in.shard.Count
			present[in.shard.Index] = true
			for _, c := range in.shard.Cells {
				planned[c] = in
			}
		}
	}
	var absent []string
	for i := 1; i <= count; i++ {
		if !present[i] {
			absent = append(absent, results.Shard{Index: i, Count: count}.String())
		}
	}
	var names []string
	for _, in := range ins {
		names = append(names, in.name)
	}
	short := map[*input][]string{} // a present shard → its planned cells without a status
	owedByAbsent := 0
	for _, c := range ins[0].sc.Expand() {
		if _, ok := owners[c.ID]; ok || !c.Runs() {
			continue
		}
		var reason string
		switch in := planned[c.ID]; {
		case in != nil:
			reason = fmt.Sprintf("shard %s (run %s) has no status for this cell: it stopped before finishing it", in.shard, in.name)
			short[in] = append(short[in], c.ID)
		case len(absent) == 1:
			reason = fmt.Sprintf("shard %s gave no result", absent[0])
			owedByAbsent++
		case len(absent) > 1:
			reason = fmt.Sprintf("shards %s gave no result; the cell was in one of them", strings.Join(absent, ", "))
			owedByAbsent++
		case count > 0:
			reason = "no shard was planned to run this cell, and none of the runs merged has a status for it"
		default:
			reason = fmt.Sprintf("none of the runs merged (%s) has a status for this cell", strings.Join(names, ", "))
		}
		res.Missing = append(res.Missing, results.Status{Cell: c.ID, State: results.Incomplete, Reason: reason})
	}
	switch {
	case len(absent) == 1 && owedByAbsent > 0:
		res.Notes = append(res.Notes, fmt.Sprintf("shard %s missing: %s", absent[0], nCells(owedByAbsent)))
	case len(absent) > 1 && owedByAbsent > 0:
		res.Notes = append(res.Notes, fmt.Sprintf("shards %s missing: %s between them", strings.Join(absent, ", "), nCells(owedByAbsent)))
	case len(absent) > 0:
		res.Notes = append(res.Notes, fmt.Sprintf("shard(s) %s missing, but every cell they could owe has a result from another run", strings.Join(absent, ", ")))
	}
	for _, in := range slices.SortedFunc(maps.Keys(short), func(a, b *input) int { return a.shard.Index - b.shard.Index }) {
		res.Notes = append(res.Notes, fmt.Sprintf("shard %s (run %s) incomplete: %d of its %s have no status",
			in.shard, in.path, len(short[in]), nCells(len(in.shard.Cells))))
	}
	if len(res.Missing) > 0 {
		res.Notes = append(res.Notes, nCells(len(res.Missing))+" without a result, recorded as incomplete:")
		for _, st := range res.Missing {
			res.Notes = append(res.Notes, fmt.Sprintf("  %s: %s", st.Cell, st.Reason))
		}
	}
}

// build writes the merged run in a hidden sibling of out, reports it, and
// renames it into place.
func build(ctx context.Context, out string, ins []*input, owners map[string]owned, copyAll bool, res *Result) (err error) {
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("merge: output %s: %w", out, err)
	}
	parent := filepath.Dir(absOut)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".labrun-merge-*")
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(tmp); rmErr != nil && err == nil {
			err = fmt.Errorf("merge: remove the temporary %s: %w", tmp, rmErr)
		}
	}()
	// The run's directory already has its final name, so that the
	// analysis and the report name the run as it will be called.
	work, err := results.Create(tmp, filepath.Base(absOut))
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := writeHead(work, ins); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	for _, cell := range slices.Sorted(maps.Keys(owners)) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		t, err := results.CopyCell(work, owners[cell].in.run, cell, !copyAll)
		res.Files.Add(t)
		if err != nil {
			return fmt.Errorf("merge: from %s: %w", owners[cell].in.path, err)
		}
	}
	for _, st := range res.Missing {
		if err := work.WriteStatus(st); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	// The expectations name the lines of the merged run's scenario.yaml at
	// the path it will have.
	data, err := os.ReadFile(work.ScenarioPath())
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	final := results.RunDir{Dir: out}
	sc, err := scenario.Parse(final.ScenarioPath(), data)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if res.Analysis, res.Expectations, err = report.BuildExpecting(work, sc.Expect); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	// out is absent or an empty directory (checkOut); an empty one is
	// replaced.
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("merge: output %s: %w", out, err)
	}
	if err := os.Rename(work.Dir, out); err != nil {
		return fmt.Errorf("merge: put the merged run in place: %w", err)
	}
	res.Run = final
	return nil
}

// writeHead writes the merged run's scenario.yaml (the first input's, byte
// for byte, so expectations keep their lines), its joined env.json and
// envs/<run>.json for each input that has one.
func writeHead(work results.RunDir, ins []*input) error {
	if err := results.CopyFile(work.ScenarioPath(), ins[0].run.ScenarioPath()); err != nil {
		return err
	}
	if err := work.WriteEnv(joinEnv(ins)); err != nil {
		return err
	}
	used := map[string]bool{}
	for i, in := range ins {
		if !in.hasEnv {
			continue
		}
		name := in.name + ".json"
		if used[name] {
			name = fmt.Sprintf("%s-%d.json", in.name, i+1)
		}
		used[name] = true
		if err := results.CopyFile(filepath.Join(work.EnvsDir(), name), in.run.EnvPath()); err != nil {
			return err
		}
	}
	return nil
}

// joinEnv is the merged run's env.json: the earliest start; each other fact
// with the distinct values of the inputs, in input order (Kubernetes
// versions comma-and-space separated as one run records several; extra
// values comma separated as labrun run's lists are); the images of all;
// and the names of the runs joined (results.EnvMergedFrom).
func joinEnv(ins []*input) results.Env {
	e := results.Env{Extra: map[string]string{}}
	var names []string
	for _, in := range ins {
		names = append(names, in.name)
		if !in.hasEnv {
			continue
		}
		x := in.env
		if !x.Started.IsZero() && (e.Started.IsZero() || x.Started.Before(e.Started)) {
			e.Started = x.Started
		}
		e.Kernel = union(e.Kernel, x.Kernel, ", ")
		e.Docker = union(e.Docker, x.Docker, ", ")
		e.Kind = union(e.Kind, x.Kind, ", ")
		e.Kubernetes = union(e.Kubernetes, x.Kubernetes, ", ")
		e.Emulator = e.Emulator || x.Emulator
		for _, im := range x.Images {
			if !slices.Contains(e.Images, im) {
				e.Images = append(e.Images, im)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(x.Extra)) {
			e.Extra[k] = union(e.Extra[k], x.Extra[k], ",")
		}
	}
	e.Extra[results.EnvMergedFrom] = strings.Join(names, ",")
	return e
}

// union adds add's sep-separated items that have lacks.
func union(have, add, sep string) string {
	if add == "" || have == add {
		return have
	}
	if have == "" {
		return add
	}
	items := strings.Split(have, sep)
	for _, it := range strings.Split(add, sep) {
		if !slices.Contains(items, it) {
			items = append(items, it)
		}
	}
	return strings.Join(items, sep)
}

// sameDir reports whether a and b are the same existing directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// nCells is "1 cell" or "n cells".
func nCells(n int) string {
	if n == 1 {
		return "1 cell"
	}
	return strconv.Itoa(n) + " cells"
}
