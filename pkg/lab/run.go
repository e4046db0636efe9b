package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/plan"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// RunOptions say what to run and where the results go.
type RunOptions struct {
	Scenario   string // the scenario file; with Resume, optional (the recorded one runs)
	ResultsDir string // where a new run's directory is made (default "results")
	Resume     string // an earlier run's directory: run only its cells without a complete status
	Retain     bool   // keep the clusters afterwards (and after a failure), each shape's own (no family shares one)
	// ClusterPrefix starts each cluster's name, followed by the shape
	// (default cluster.NamePrefix: labrun-<shape>). It must start with
	// cluster.NamePrefix.
	ClusterPrefix string
	// Mirror overrides the scenario's images.mirror: a registry mirror the
	// published images the cells need are pulled through.
	Mirror string
	// Provider makes the clusters (default: kind).
	Provider cluster.Provider
	Progress io.Writer
	// Parallel is how many shapes (each its own cluster) run at once: 0 or
	// 1 one after another, ParallelAuto as many as the shapes, memory
	// (NodeMemory a node) and CPUs allow. More clusters than memory holds
	// is an error wrapping ErrTooParallel. A shape's cells always run one
	// after another on its cluster.
	Parallel int
	// CellsAtOnce is how many cells of a shape run side by side, each on
	// workers of its own (lanes.go); 0 takes the scenario's cellsAtOnce
	// (default 1: one after another).
	CellsAtOnce int
	// Shard, when set, runs only shard Index of Count: the cells that
	// plan.Split gives it on this host (labrun plan --shards N shows the
	// same split). Run fills Cells in and records shard.json; the cells of
	// other shards get no status file, and the cells the plan does not run
	// are recorded by shard 1 only. On resume the recorded shard runs, and
	// Shard, if set, must be that one.
	Shard *results.Shard

	// bringUp makes a shape's testbed (default Up); unit tests give one
	// that stands a fake cluster up without images or addons.
	bringUp func(context.Context, UpOptions) (*Testbed, error)
	// probe finds what the host can run (default probeHost) and hostEnv
	// the host's part of env.json (default collect.HostEnv); unit tests
	// give fixed ones.
	probe   func(context.Context) hostFacts
	hostEnv func(context.Context, []scenario.Cell) results.Env
	// machine reads memory and CPUs for Parallel (default readMachine).
	machine func() machine
	// setUpUndoable sets a cluster-level mitigation up on a cluster that
	// serves a family of shapes (default addons.SetUpUndoable) and
	// readState reads what its resets must return it to (default
	// cluster.ReadState): reuse.go. Unit tests give fakes.
	setUpUndoable func(context.Context, addons.Env, string) (addons.Undo, error)
	readState     func(context.Context, *cluster.Cluster) (cluster.State, error)
}

// RunResult is where a run's results are.
type RunResult struct {
	Run      results.RunDir
	Analysis *analyze.Analysis
	// Expectations are the scenario's expect: block judged on the run,
	// their sources lines of the scenario file given (of the recorded one
	// on a resume without it).
	Expectations []expect.Result
	Index        string // results/<run>/index.html
}

// ErrInterrupted is returned (wrapped) when ctx ended before every cell ran;
// what was measured is written and the report built.
var ErrInterrupted = errors.New("interrupted")

// ErrBadInput is wrapped by Run's refusal of options that cannot be met
// (the CLI's exit 2); nothing was run.
var ErrBadInput = errors.New("bad input")

// ErrCellsIncomplete is returned (wrapped, with the result) when every cell
// was reached but some did not complete: the report is built, and the run
// failed (exit 1; docs/exit-codes.md).
var ErrCellsIncomplete = errors.New("cells incomplete")

// Run runs a scenario: one cluster per shape (or family of shapes:
// reuse.go), reused by all its cells, each cell measured and torn down, then
// the analysis and the report. Cells that
// cannot run get a not-run status with the reason. On an interrupt it tears
// down what it made (clusters unless Retain), marks the unfinished cells
// incomplete, builds the report and returns an error wrapping
// ErrInterrupted with the result.
func Run(ctx context.Context, o RunOptions) (*RunResult, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	ownKind := o.Provider == nil
	if ownKind {
		o.Provider = kind.New(o.Progress)
	}
	if o.bringUp == nil {
		o.bringUp = Up
	}
	if o.probe == nil {
		o.probe = probeHost
	}
	if o.hostEnv == nil {
		o.hostEnv = collect.HostEnv
	}
	if o.machine == nil {
		o.machine = readMachine
	}
	if o.setUpUndoable == nil {
		o.setUpUndoable = addons.SetUpUndoable
	}
	if o.readState == nil {
		o.readState = cluster.ReadState
	}
	if o.Parallel < 0 && o.Parallel != ParallelAuto {
		return nil, fmt.Errorf("--parallel %d: want a number of clusters ≥ 1, or auto", o.Parallel)
	}
	if _, ok := o.Provider.(cluster.ExistingProvider); ok {
		// One cluster, and every shape's cells in the run's one namespace:
		// shapes can only run one after another.
		if o.Parallel > 1 {
			return nil, fmt.Errorf("--parallel %d: an existing cluster is one cluster, whose shapes run one after another in the run's namespace; want 1: %w", o.Parallel, ErrBadInput)
		}
		o.Parallel = 1 // auto, too
		if o.CellsAtOnce > 1 {
			return nil, fmt.Errorf("--cells-at-once %d: cells side by side need workers kept for them, which only a kind cluster of the lab has; want 1: %w", o.CellsAtOnce, ErrBadInput)
		}
		o.CellsAtOnce = 1 // whatever the scenario says
	}
	if o.CellsAtOnce < 0 || o.CellsAtOnce > scenario.MaxCellsAtOnce {
		return nil, fmt.Errorf("--cells-at-once %d: want 1 to %d: %w", o.CellsAtOnce, scenario.MaxCellsAtOnce, ErrBadInput)
	}
	if o.Shard != nil {
		if err := plan.CheckShard(o.Shard.Index, o.Shard.Count); err != nil {
			return nil, err
		}
	}
	if o.ClusterPrefix == "" {
		o.ClusterPrefix = cluster.NamePrefix
	}
	if !strings.HasPrefix(o.ClusterPrefix, cluster.NamePrefix) {
		return nil, fmt.Errorf("cluster prefix %q must start with %q", o.ClusterPrefix, cluster.NamePrefix)
	}
	adopted, err := adopt(ctx, &o) // nil unless the cluster exists already
	if err != nil {
		return nil, err
	}
	sc, run, made, err := openRun(o)
	if err != nil {
		return nil, err
	}
	cells := sc.Expand()
	host := o.probe(ctx)
	// Through a mirror, the published images the cells need are pulled only
	// once the memory check below has passed (it fails fast): until then
	// the host is taken to hold them, which counts the most clusters.
	mirror := cmp.Or(o.Mirror, sc.Images.Mirror)
	pull := mirror != "" && adopted == nil
	planned := host
	if pull {
		planned.have = func(string) bool { return true }
	}
	if adopted != nil && planned.have != nil {
		// An existing cluster has its nodes: no node image is loaded there.
		have := planned.have
		planned.have = func(ref string) bool { return images.IsNodeRef(ref) || have(ref) }
	}
	markHostLimits(cells, planned)
	adopted.mark(cells)
	shard, err := shardOf(run, o, cells)
	if err != nil {
		return nil, err
	}
	todo, err := cellsToRun(run, cells, o.Resume != "", shard)
	if err != nil {
		return nil, err
	}
	shapes := scenario.Plan(todo)
	m := o.machine()
	want := cellsAtOnce(o.CellsAtOnce, sc)
	lanes := shapeLanes(want, shapes)
	var fewer string
	var tooMany error
	if err := checkLanes(shapeNodes(shapes, lanes), lanes, m); err != nil {
		if o.CellsAtOnce > 0 {
			tooMany = fmt.Errorf("--cells-at-once %d: %v; ask for fewer cells at once: %w", want, err, ErrTooParallel)
		} else {
			// The scenario's default, not the user's ask: on a machine that
			// cannot hold it the cells run one at a time.
			fewer = fmt.Sprintf("cellsAtOnce %d of scenario %s: %v: the cells run one at a time", want, sc.Metadata.Name, err)
			want, lanes = 1, shapeLanes(1, shapes)
		}
	}
	parallel, notes, err := parallelism(o.Parallel, shapeNodes(shapes, lanes), m)
	if fewer != "" {
		notes = append([]string{fewer}, notes...)
	}
	if tooMany != nil {
		err = tooMany
	}
	if err != nil {
		if made {
			// Nothing ran: the run directory made for it goes too.
			os.RemoveAll(run.Dir)
		}
		return nil, err
	}
	if pull {
		if err := pullThroughMirror(ctx, mirror, todo, o.Progress); err != nil {
			fmt.Fprintf(o.Progress, "images: %v\n", err)
		}
		// What the mirror did not give stands in the way: those cells are
		// not run, with the host's reason. Fewer shapes fit as well.
		markHostLimits(cells, host)
		markHostLimits(todo, host)
		if todo, err = cellsToRun(run, todo, false, nil); err != nil {
			return nil, err
		}
		shapes = scenario.Plan(todo)
		lanes = shapeLanes(want, shapes)
		if parallel, notes, err = parallelism(o.Parallel, shapeNodes(shapes, lanes), m); err != nil {
			return nil, err
		}
	}
	env, err := startEnv(ctx, o.hostEnv, run, inShard(cells, shard), host)
	if err != nil {
		return nil, err
	}
	if slices.Max(append([]int{1}, lanes...)) > 1 {
		// The report says so: neighbours share the CPUs.
		env.Extra["cells_at_once"] = strconv.Itoa(want)
		if err := run.WriteEnv(env); err != nil {
			return nil, err
		}
	}
	// One cluster serves a family of shapes in turn only when shapes run
	// one after another on clusters of the lab's own, not kept: a kept
	// cluster is each shape's own, as the shape set it up.
	_, existing := o.Provider.(cluster.ExistingProvider)
	shared := &runShared{run: run, env: &env, eta: &ETA{}, shapes: shapes, atOnce: want, lanes: lanes, parallel: parallel,
		families: scenario.Families(shapes, lanes, parallel <= 1 && !existing && !o.Retain)}
	shared.eta.SideBySide(want)
	part, atOnce := "", ""
	if shard != nil {
		part = fmt.Sprintf("shard %s: %d of the ", shard, len(shard.Cells))
	}
	estimate := shared.eta.Remaining(todo, len(shared.families), switches(shared.families), false)
	if parallel > 1 {
		shared.eta.Plan(parallel, restOf(shapes))
		estimate = shared.eta.RunRemaining()
		atOnce = fmt.Sprintf(", %d at once", parallel)
	}
	if most := slices.Max(append([]int{1}, lanes...)); most > 1 {
		atOnce += fmt.Sprintf(", up to %d cells at once on each", most)
	}
	if parallel > 1 || want > 1 {
		// Whole lines only, from every shape and lane: see shapeWriter.
		o.Progress = &lineSink{w: o.Progress}
	}
	fmt.Fprintf(o.Progress, "run %s: %s%d cells, %d to run on %d cluster(s)%s; estimated %s; results in %s\n",
		run.Name(), part, len(cells), len(todo), len(shared.families), atOnce, estimate, run.Dir)
	for _, n := range notes {
		fmt.Fprintln(o.Progress, n)
	}

	// Up to parallel shapes at once, started in plan order. A shape that
	// fails does not stop the others; an interrupt (ctx) stops them all,
	// and each deletes its cluster on the way out.
	errs := make([]error, len(shared.families))
	reachedBy := make([]map[string]results.Status, len(shapes))
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for f, family := range shared.families {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		for _, si := range family {
			reachedBy[si] = map[string]results.Status{}
		}
		ps := shapes[family[0]]
		so := o
		var w *shapeWriter
		if parallel > 1 {
			// Side by side, each family is one shape (families).
			w = &shapeWriter{sink: o.Progress, name: ClusterName(o.ClusterPrefix, ps.Shape.ID), cells: cellIDs(ps.Cells)}
			so.Progress = w
			if ownKind {
				// kind's own lines ("kind: ✓ Preparing nodes") name no
				// cluster: each shape's provider writes them through its
				// writer.
				so.Provider = kind.New(w)
			}
		}
		wg.Add(1)
		go func() {
			defer func() {
				<-slots
				wg.Done()
			}()
			// A panic would end the process with the other shapes'
			// clusters up or the later shapes not run: whether shapes run
			// side by side or one at a time, it fails this family only (its
			// cluster is deleted on the way out, as after an error).
			defer func() {
				if r := recover(); r != nil {
					errs[f] = fmt.Errorf("shape %s: panic: %v", ps.Shape.ID, r)
					fmt.Fprintf(so.Progress, "cluster for shape %s: panic: %v\n%s", ps.Shape.ID, r, debug.Stack())
					if w != nil {
						w.Flush()
					}
				}
			}()
			errs[f] = runFamily(ctx, so, shared, family, reachedBy)
			if errs[f] != nil {
				fmt.Fprintf(so.Progress, "cluster for shape %s: %v\n", ps.Shape.ID, errs[f])
			}
			if w != nil {
				w.Flush()
			}
		}()
	}
	wg.Wait()
	var failures []string
	reached := map[string]results.Status{}
	for _, err := range errs {
		if err != nil {
			failures = append(failures, err.Error())
		}
	}
	for _, r := range reachedBy {
		maps.Copy(reached, r)
	}
	interrupted := ctx.Err() != nil
	var incomplete []string
	for _, c := range todo {
		if st, ok := reached[c.ID]; ok {
			if st.State != results.Complete {
				incomplete = append(incomplete, c.ID)
			}
			continue
		}
		reason := "not reached: " + strings.Join(failures, "; ")
		if interrupted {
			reason = "interrupted (Ctrl-C) before this cell ran; --resume runs it"
		}
		if err := run.WriteStatus(results.Status{Cell: c.ID, State: results.Incomplete, Reason: reason}); err != nil {
			failures = append(failures, err.Error())
		}
	}

	fmt.Fprintf(o.Progress, "report: analysing %s\n", run.Dir)
	a, exps, err := report.BuildExpecting(run, sc.Expect)
	if err != nil {
		return nil, fmt.Errorf("report of %s: %w", run.Dir, err)
	}
	res := &RunResult{Run: run, Analysis: a, Expectations: exps, Index: run.IndexPath()}
	fmt.Fprintf(o.Progress, "report: %s\n", claimsLine(a))
	if len(exps) > 0 {
		fmt.Fprintf(o.Progress, "report: expectations: %s\n", expect.Tally(exps))
	}
	switch {
	case interrupted:
		return res, fmt.Errorf("run %s: %w (%w); what was measured is in %s", run.Name(), ErrInterrupted, ctx.Err(), run.Dir)
	case len(failures) > 0:
		return res, fmt.Errorf("run %s: %s", run.Name(), strings.Join(failures, "; "))
	case len(incomplete) > 0:
		return res, fmt.Errorf("run %s: %w: %d of %d (%s; %s says why); --resume %s runs them again",
			run.Name(), ErrCellsIncomplete, len(incomplete), len(todo), strings.Join(incomplete, ", "),
			filepath.Dir(run.StatusPath(incomplete[0])), run.Dir)
	}
	return res, nil
}

// openRun makes a new run directory with the scenario as resolved, or opens
// the one to resume with its recorded scenario; made says that it made the
// directory (it did not exist).
func openRun(o RunOptions) (_ *scenario.Scenario, _ results.RunDir, made bool, _ error) {
	if o.Resume != "" {
		run, err := results.Open(o.Resume)
		if err != nil {
			return nil, results.RunDir{}, false, err
		}
		sc, err := run.ReadScenario()
		if err != nil {
			return nil, results.RunDir{}, false, fmt.Errorf("resume %s: %w", o.Resume, err)
		}
		if o.Scenario != "" {
			given, err := scenario.LoadFile(o.Scenario)
			if err != nil {
				return nil, results.RunDir{}, false, err
			}
			if !slices.Equal(cellIDs(given.Expand()), cellIDs(sc.Expand())) {
				return nil, results.RunDir{}, false, fmt.Errorf("resume %s: %s does not have the cells of the recorded scenario %s", o.Resume, o.Scenario, run.ScenarioPath())
			}
		}
		return sc, run, false, nil
	}
	if o.Scenario == "" {
		return nil, results.RunDir{}, false, errors.New("run: a scenario file is required")
	}
	sc, err := scenario.LoadFile(o.Scenario)
	if err != nil {
		return nil, results.RunDir{}, false, err
	}
	root := o.ResultsDir
	if root == "" {
		root = "results"
	}
	name := sc.Metadata.Name + "-" + time.Now().UTC().Format("20060102-150405")
	if o.Shard != nil {
		// Shards of one scenario started in the same second on different
		// machines are uploaded side by side: their names must differ.
		name += fmt.Sprintf("-shard-%d-of-%d", o.Shard.Index, o.Shard.Count)
	}
	_, statErr := os.Stat(filepath.Join(root, name))
	run, err := results.Create(root, name)
	if err != nil {
		return nil, results.RunDir{}, false, err
	}
	if err := run.WriteScenario(sc); err != nil {
		return nil, results.RunDir{}, false, err
	}
	return sc, run, errors.Is(statErr, fs.ErrNotExist), nil
}

func cellIDs(cells []scenario.Cell) []string {
	ids := make([]string, len(cells))
	for i, c := range cells {
		ids[i] = c.ID
	}
	return ids
}

// cannotRun says why the runner cannot run a cell ("" if it can): the
// scenario's reason, or a race emulator setting labagent cannot take.
func cannotRun(c scenario.Cell) string {
	if !c.Runs() {
		return c.NotRun
	}
	if e := c.Chaos.RaceEmulator; e != nil && e.Probability != nil {
		return "raceEmulator.probability: labagent takes no explicit drop probability (it derives p from the profile and the DNS replicas)"
	}
	return ""
}

// shardOf is the shard a run is, nil for a whole run: on resume the one
// shard.json records (o.Shard, if set, must be the same); for a new run shard
// o.Shard of plan.Split over the cells as this host marks them, recorded in
// shard.json.
func shardOf(run results.RunDir, o RunOptions, cells []scenario.Cell) (*results.Shard, error) {
	if o.Resume != "" {
		rec, ok, err := run.ReadShard()
		switch {
		case err != nil:
			return nil, fmt.Errorf("resume %s: %w", o.Resume, err)
		case !ok && o.Shard != nil:
			return nil, fmt.Errorf("resume %s: not a shard run (no shard.json); --shard %s splits new runs only", o.Resume, o.Shard)
		case !ok:
			return nil, nil
		case o.Shard != nil && (o.Shard.Index != rec.Index || o.Shard.Count != rec.Count):
			return nil, fmt.Errorf("resume %s: it is shard %s, not %s", o.Resume, rec, o.Shard)
		}
		return &rec, nil
	}
	if o.Shard == nil {
		return nil, nil
	}
	shards, err := plan.Split(cells, o.Shard.Count)
	if err != nil {
		return nil, err
	}
	s := results.Shard{Index: o.Shard.Index, Count: o.Shard.Count, Cells: shards[o.Shard.Index-1].IDs()}
	if err := run.WriteShard(s); err != nil {
		return nil, err
	}
	return &s, nil
}

// inShard are the cells of the shard (all of them without one).
func inShard(cells []scenario.Cell, shard *results.Shard) []scenario.Cell {
	if shard == nil {
		return cells
	}
	var out []scenario.Cell
	for _, c := range cells {
		if slices.Contains(shard.Cells, c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// cellsToRun writes the not-run status of cells that cannot run and returns
// the others still to run: all of them, or on resume those without a
// complete status. A shard run takes only its shard's cells; the cells the
// plan does not run are in no shard, and shard 1 records them (when it
// starts: on resume they are recorded already, and a cell another shard
// planned may since have become one the host cannot run).
func cellsToRun(run results.RunDir, cells []scenario.Cell, resume bool, shard *results.Shard) ([]scenario.Cell, error) {
	ours := func(scenario.Cell) bool { return true }
	if shard != nil {
		mine := map[string]bool{}
		for _, id := range shard.Cells {
			mine[id] = true
		}
		ours = func(c scenario.Cell) bool { return mine[c.ID] || (!resume && shard.Index == 1 && !c.Runs()) }
	}
	pending := map[string]bool{}
	if resume {
		ids, err := run.Pending(cellIDs(cells))
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			pending[id] = true
		}
	}
	var todo []scenario.Cell
	for _, c := range cells {
		if resume && !pending[c.ID] || !ours(c) {
			continue
		}
		if why := cannotRun(c); why != "" {
			if err := run.WriteStatus(results.Status{Cell: c.ID, State: results.NotRun, Reason: why}); err != nil {
				return nil, err
			}
			continue
		}
		todo = append(todo, c)
	}
	return todo, nil
}

// startEnv writes env.json with what is known before any cluster: on
// resume it keeps what the earlier run recorded.
func startEnv(ctx context.Context, hostEnv func(context.Context, []scenario.Cell) results.Env,
	run results.RunDir, cells []scenario.Cell, host hostFacts) (results.Env, error) {
	env := hostEnv(ctx, cells)
	recordHost(&env, host)
	env.Started = time.Now().UTC()
	if old, ok, err := run.ReadEnv(); err != nil {
		return env, err
	} else if ok {
		env.Started, env.Kubernetes, env.Images = old.Started, old.Kubernetes, old.Images
		for k, v := range old.Extra {
			if _, set := env.Extra[k]; !set {
				env.Extra[k] = v
			}
		}
		env.Extra["resumed"] = time.Now().UTC().Format(time.RFC3339)
	}
	return env, run.WriteEnv(env)
}

func restOf(shapes []scenario.PlanShape) [][]scenario.Cell {
	out := make([][]scenario.Cell, len(shapes))
	for i, s := range shapes {
		out[i] = s.Cells
	}
	return out
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// ClusterName is the kind cluster of a shape: prefix-shape, lower case,
// within kind's limits.
func ClusterName(prefix, shapeID string) string {
	s := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(shapeID), "-"), "-")
	name := prefix + "-" + s
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	return name
}

// runShared is what the shapes of a run share, safe for those run side by
// side: the run directory (each cell writes files of its own), env.json
// (each shape adds its cluster's facts and writes the merged whole, under
// envMu), the ETA (safe itself), and the plan.
type runShared struct {
	run      results.RunDir
	envMu    sync.Mutex
	env      *results.Env
	eta      *ETA
	shapes   []scenario.PlanShape
	atOnce   int   // cells of a shape at once asked for
	lanes    []int // each shape's cells at once (shapeLanes)
	parallel int   // shapes at once
	// families are the shapes (indices) each cluster serves, in the order
	// they run (reuse.go).
	families [][]int
}

// addClusterEnv adds a cluster's facts to env.json and writes it.
func (s *runShared) addClusterEnv(ctx context.Context, l *Testbed, progress io.Writer) error {
	s.envMu.Lock()
	defer s.envMu.Unlock()
	// A fact that cannot be read is recorded as such; it does not stop the
	// measurement.
	if err := addClusterEnv(ctx, s.env, l); err != nil {
		fmt.Fprintf(progress, "env.json: %v\n", err)
		s.env.Extra["error_"+l.Cluster.Name] = err.Error()
	}
	return s.run.WriteEnv(*s.env)
}

// runShape brings shape si's cluster up, runs its cells, and deletes the
// cluster (unless Retain), even on an interrupt. Each cell's status goes in
// reached.
func runShape(ctx context.Context, o RunOptions, sh *runShared, si int, reached map[string]results.Status) error {
	ps := sh.shapes[si]
	l, down, err := upShape(ctx, o, sh, si, ps.Shape.ClusterMitigations, sh.lanes[si])
	if err != nil {
		return err
	}
	defer down()
	return runCells(ctx, o, sh, si, l, l, reached)
}

// upShape brings up the cluster of shape si (named after it) with the
// cluster-level mitigations given and for atOnce cells at once, deleting
// one an earlier run left first. down deletes it (unless Retain), with a
// context of its own: it also runs after an interrupt.
func upShape(ctx context.Context, o RunOptions, sh *runShared, si int, mitigations []string, atOnce int) (_ *Testbed, down func(), _ error) {
	ps := sh.shapes[si]
	name := ClusterName(o.ClusterPrefix, ps.Shape.ID)
	if existing, err := o.Provider.List(ctx); err == nil && slices.Contains(existing, name) {
		fmt.Fprintf(o.Progress, "cluster %s: left by an earlier run, deleting it first\n", name)
		if err := o.Provider.Delete(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	l, err := o.bringUp(ctx, UpOptions{Name: name, Scenario: sh.run.ScenarioPath(), Shape: ps.Shape.Cluster.Name,
		ClusterMitigations: mitigations, CellsAtOnce: atOnce, Retain: o.Retain, Provider: o.Provider,
		Run: sh.run.Name(), Progress: o.Progress})
	if err != nil {
		return nil, nil, fmt.Errorf("bring cluster %s up: %w", name, err)
	}
	down = func() {
		if o.Retain {
			fmt.Fprintf(o.Progress, "cluster %s: kept (--retain); kubeconfig %s; `labrun cluster down --name %s` deletes it\n", name, l.Cluster.Kubeconfig, name)
			return
		}
		down, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := o.Provider.Delete(down, name); err != nil {
			fmt.Fprintf(o.Progress, "cluster %s: %v\n", name, err)
		}
	}
	return l, down, nil
}

// runCells runs shape si's cells on testbed l, recording the cluster in
// env.json as recorded says (l itself, or for a shape served by another
// shape's cluster, that cluster under the shape's own name: reuse.go).
func runCells(ctx context.Context, o RunOptions, sh *runShared, si int, l, recorded *Testbed, reached map[string]results.Status) (err error) {
	ps, run, eta := sh.shapes[si], sh.run, sh.eta
	// The ETA: with shapes side by side, of the whole run (RunRemaining);
	// one after another, of this shape and the shapes to come.
	later, clustersLater, switchesLater := sh.after(si)
	side := sh.parallel > 1
	if side {
		eta.Start(si)
		defer eta.Done(si)
	}
	name := l.Cluster.Name
	cr, err := newClusterRun(ctx, l, run, ps.Shape, o.Progress)
	if err != nil {
		return err
	}
	defer func() {
		if !o.Retain {
			return // the namespaces go with the cluster: nothing to wait for
		}
		settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if serr := cr.settle(settle); serr != nil {
			err = errors.Join(err, fmt.Errorf("cluster %s: cell namespaces left: %w", name, serr))
		}
	}()
	lanes := cr.lanes(sh.lanes[si])
	if _, why := lanesFor(sh.atOnce, ps.Shape.Cluster, len(ps.Cells)); why != "" {
		fmt.Fprintf(o.Progress, "cluster %s: one cell at a time: %s\n", name, why)
	}
	if len(lanes) > 1 {
		var each []string
		for _, lr := range lanes {
			each = append(each, lr.lane)
		}
		fmt.Fprintf(o.Progress, "cluster %s: %d cells at once, each on workers of its own: %s\n", name, len(lanes), strings.Join(each, "; "))
		if recorded.Facts != nil {
			recorded.Facts["cellsAtOnce"] = strings.Join(each, "; ")
		}
	}
	if err := sh.addClusterEnv(ctx, recorded, o.Progress); err != nil {
		return err
	}
	// Each lane takes the next cell not yet taken, until none is left, the
	// run is interrupted or a lane failed (a status it could not write).
	var (
		mu     sync.Mutex
		next   int // the next cell to take
		failed error
	)
	runLane := func(lr *clusterRun) (err error) {
		// The race emulator the lane's last cell left goes with the lane.
		defer func() { err = errors.Join(err, lr.endLane(ctx)) }()
		for {
			mu.Lock()
			i := next
			if i == len(ps.Cells) || ctx.Err() != nil || failed != nil {
				mu.Unlock()
				return nil // the caller marks the cells not reached
			}
			next++
			mu.Unlock()
			c := ps.Cells[i]
			left := append(slices.Clone(ps.Cells[i+1:]), later...)
			var startETA time.Duration
			if side {
				eta.Left(si, ps.Cells[i:])
				startETA = eta.RunRemaining()
			} else {
				startETA = eta.Remaining(append([]scenario.Cell{c}, left...), clustersLater, switchesLater, true)
			}
			where := ""
			if lr.lane != "" {
				where = "; " + lr.lane
			}
			fmt.Fprintf(o.Progress, "cell %d/%d %s: %s%s; ETA %s\n", i+1, len(ps.Cells), c.ID, cellPlanLine(c, len(lr.workers)), where, startETA)
			start := time.Now()
			res := lr.runCell(ctx, c)
			mu.Lock()
			reached[c.ID] = res.Status
			mu.Unlock()
			if err := run.WriteStatus(res.Status); err != nil {
				return err
			}
			eta.Observe(time.Since(start), c)
			mu.Lock()
			rest := ps.Cells[next:]
			mu.Unlock()
			var endETA time.Duration
			if side {
				eta.Left(si, rest)
				endETA = eta.RunRemaining()
			} else {
				endETA = eta.Remaining(append(slices.Clone(rest), later...), clustersLater, switchesLater, true)
			}
			fmt.Fprintf(o.Progress, "cell %d/%d %s: %s in %s; ETA %s\n", i+1, len(ps.Cells), c.ID, resultLine(res),
				time.Since(start).Round(time.Second), endETA)
		}
	}
	if len(lanes) == 1 {
		return runLane(cr)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(lanes))
	for k, lr := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A panic outside a cell (which recovers its own) fails the
			// lane, not the process with the other lane's cell running.
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					errs[k] = fmt.Errorf("%s: panic: %v", lr.lane, r)
					failed = errs[k]
					mu.Unlock()
				}
			}()
			if errs[k] = runLane(lr); errs[k] != nil {
				mu.Lock()
				failed = errs[k]
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
