//go:build e2e

package faults

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const scenarioFile = "testdata/fault.yaml"

// cells of testdata/fault.yaml, in the order they run.
var cells = []string{"default_glibc_none", "default_glibc_single-request-reopen"}

// runLimit bounds one labrun run of the fault scenario (a cluster and two
// short cells take 2-3 minutes here; more on a loaded machine).
const runLimit = 12 * time.Minute

// interrupted is a run struck by a fault at one stage.
type interrupted struct {
	name     string
	fault    fault
	wantCode int
	// statuses says what each cell's status must be after the fault: a
	// state and a word of its reason ("" when no status file is expected).
	statuses map[string][2]string
	clean    bool // run labrun clean after the fault (SIGKILL leaves what it made)
}

// strike runs labrun (a new run of the fault scenario when run is nil, else
// --resume of run) under the fault, then checks the exit code, the host
// against before and the status files. It returns the run.
func (tc interrupted) strike(ctx context.Context, t *testing.T, cprefix string, before host, run *results.RunDir) results.RunDir {
	t.Helper()
	prefix := "labrun-" + cprefix
	resultsDir := t.TempDir()
	args := []string{"run", scenarioFile, "--results", resultsDir, "--cluster-prefix", cprefix}
	if run != nil {
		args = []string{"run", "--resume", run.Dir, "--cluster-prefix", cprefix}
	}
	p := runLabrun(ctx, t, runLimit, &tc.fault, args...)
	t.Logf("%s: labrun exited %d, %s after the fault", tc.name, p.code, p.cleanupTime())
	if p.fired.IsZero() {
		t.Errorf("%s: the fault never struck (no progress line with %q)", tc.name, tc.fault.marker)
	}
	if p.code != tc.wantCode {
		t.Errorf("%s: exit code %d, want %d", tc.name, p.code, tc.wantCode)
	}
	if tc.clean {
		c := runLabrun(ctx, t, 5*time.Minute, nil, "clean", "--cluster-prefix", cprefix)
		if c.code != 0 {
			t.Errorf("labrun clean exited %d", c.code)
		}
	}
	checkNothingLeft(ctx, t, prefix, before)
	if run == nil {
		r := onlyRun(t, resultsDir)
		run = &r
	}
	checkStatuses(t, *run, tc.statuses)
	return *run
}

// resumeCompletes runs --resume of run with no fault: it exits 0, every
// cell is complete, the report is there and the host is as before.
func resumeCompletes(ctx context.Context, t *testing.T, cprefix string, before host, run results.RunDir) {
	t.Helper()
	r := runLabrun(ctx, t, runLimit, nil, "run", "--resume", run.Dir, "--cluster-prefix", cprefix)
	if r.code != 0 {
		t.Errorf("--resume exited %d, want 0", r.code)
	}
	all := map[string][2]string{}
	for _, c := range cells {
		all[c] = [2]string{complete, ""}
	}
	checkStatuses(t, run, all)
	if _, err := os.Stat(run.IndexPath()); err != nil {
		t.Errorf("the resumed run's report: %v", err)
	}
	checkNothingLeft(ctx, t, "labrun-"+cprefix, before)
}

// feature is one run struck by tc, then resumed to completion.
func (tc interrupted) feature(cprefix string) features.Feature {
	return features.New(tc.name).
		Assess("the run stops with what happened in its status files, leaves the host as it was, and --resume completes it",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				e2ekit.Keep(t, "labrun-"+cprefix)
				before := readHost(ctx, t, "labrun-"+cprefix)
				run := tc.strike(ctx, t, cprefix, before, nil)
				resumeCompletes(ctx, t, cprefix, before, run)
				return ctx
			}).Feature()
}

// onlyRun is the one run directory a results folder holds.
func onlyRun(t *testing.T, dir string) results.RunDir {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(dir, "e2e-faults-*"))
	if len(dirs) != 1 {
		t.Fatalf("run directories in %s: %v, want one", dir, dirs)
	}
	run, err := results.Open(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func checkStatuses(t *testing.T, run results.RunDir, want map[string][2]string) {
	t.Helper()
	for cell, w := range want {
		st, ok, err := run.ReadStatus(cell)
		switch {
		case err != nil:
			t.Errorf("status of %s: %v", cell, err)
		case w[0] == "" && ok:
			t.Errorf("status of %s: %s (%s), want none (the run was killed before it was written)", cell, st.State, st.Reason)
		case w[0] == "" || w[0] == anyState:
		case !ok:
			t.Errorf("status of %s: none, want %s", cell, w[0])
		case string(st.State) != w[0] || !strings.Contains(st.Reason, w[1]):
			t.Errorf("status of %s: %s (%q), want %s with %q", cell, st.State, st.Reason, w[0], w[1])
		default:
			t.Logf("status of %s: %s %s", cell, st.State, st.Reason)
		}
	}
}

// anyState is a status not checked (after a fault that may or may not reach a cell).
const anyState = "any"

var (
	incomplete = string(results.Incomplete)
	complete   = string(results.Complete)
)

// stages strike one run at every stage in turn: each fault's --resume is
// the next fault's run, and the last --resume completes it. (One run for all
// of them, rather than a run and a resume per fault, spares ten cluster
// creations: the test command's time.)
var stages = []interrupted{{
	name:     "SIGINT while kind creates the cluster",
	fault:    fault{marker: "egress guard: ", after: 8 * time.Second, signal: syscall.SIGINT},
	wantCode: 130,
	statuses: map[string][2]string{cells[0]: {incomplete, "--resume"}, cells[1]: {incomplete, "--resume"}},
}, {
	name:     "SIGINT during a cell's set-up",
	fault:    fault{marker: "cell 1/2 " + cells[0] + ": ", after: 300 * time.Millisecond, signal: syscall.SIGINT},
	wantCode: 130,
	statuses: map[string][2]string{cells[0]: {incomplete, "interrupted (Ctrl-C) while the cell ran"}, cells[1]: {incomplete, "--resume"}},
}, {
	name:     "SIGINT while the probes run",
	fault:    fault{marker: cells[0] + ": probes running", after: 4 * time.Second, signal: syscall.SIGINT},
	wantCode: 130,
	statuses: map[string][2]string{cells[0]: {incomplete, "the probe stopped early"}, cells[1]: {incomplete, "--resume"}},
}, {
	name:  "SIGINT during a cell's teardown",
	fault: fault{marker: cells[0] + ": tearing down", signal: syscall.SIGINT},
	// The cell had measured everything when the signal came, but its
	// teardown was cut short: it is interrupted, and measured again.
	wantCode: 130,
	statuses: map[string][2]string{cells[0]: {incomplete, "interrupted (Ctrl-C) while the cell ran"}, cells[1]: {incomplete, "--resume"}},
}, {
	// A killed labrun writes no status: the files are the teardown's.
	name:     "SIGKILL mid-cell, then labrun clean",
	fault:    fault{marker: cells[0] + ": probes running", after: 4 * time.Second, signal: syscall.SIGKILL},
	wantCode: -1,
	statuses: map[string][2]string{cells[0]: {incomplete, "interrupted (Ctrl-C) while the cell ran"}, cells[1]: {incomplete, "--resume"}},
	clean:    true,
}, {
	name:     "SIGINT while the report is built",
	fault:    fault{marker: "report: analysing", signal: syscall.SIGINT},
	wantCode: 130,
	statuses: map[string][2]string{cells[0]: {complete, ""}, cells[1]: {complete, ""}},
}}

// TestE2EFaultEveryStage strikes one run at each stage of stages in turn,
// checking the host and the status files after each, then resumes it to
// completion.
func TestE2EFaultEveryStage(t *testing.T) {
	const cprefix = "ftstage"
	f := features.New("one run struck at every stage").
		Assess("each fault stops the run with its status files right and the host as it was; --resume goes on and completes it",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				e2ekit.Keep(t, "labrun-"+cprefix)
				before := readHost(ctx, t, "labrun-"+cprefix)
				var run *results.RunDir
				for _, st := range stages {
					r := st.strike(ctx, t, cprefix, before, run)
					run = &r
					if t.Failed() {
						t.Fatalf("stopped after %q failed", st.name)
					}
				}
				resumeCompletes(ctx, t, cprefix, before, *run)
				return ctx
			}).Feature()
	testenv.Test(t, f)
}
