//go:build e2e

package nightly

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const (
	scenarioFile = "testdata/two-shapes.yaml"
	// The shards run with the default cluster prefix: labrun-<shape>, the
	// shapes named e2enl-*; the whole run with its own.
	shardPrefix = "labrun-e2enl-"
	wholePrefix = "labrun-e2enlw"
)

func TestE2ENightlyLocal(t *testing.T) {
	var merged, whole report.Summary
	var out string
	f := features.New("make nightly-local: two shards merged match one whole run").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			e2ekit.Keep(t, shardPrefix)
			root, err := filepath.Abs("../../..")
			if err != nil {
				t.Fatal(err)
			}
			file, err := filepath.Abs(scenarioFile)
			if err != nil {
				t.Fatal(err)
			}
			out = t.TempDir()
			// What `make nightly-local SCENARIO=... SHARDS=2` runs, with
			// the scenario file and the output directory of this test.
			for _, args := range [][]string{{"make", "build"}, {"hack/nightly-local.sh", file, "2"}} {
				cmd := exec.CommandContext(ctx, args[0], args[1:]...)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "OUT="+out)
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("%v: %v (want exit 0: every expectation met)", args, err)
				}
			}
			runs, _ := filepath.Glob(filepath.Join(out, "nightly-local-*", "merged", "*", "summary.json"))
			if len(runs) != 1 {
				t.Fatalf("merged runs %v, want one", runs)
			}
			if err := results.ReadJSON(runs[0], &merged); err != nil {
				t.Fatal(err)
			}
			whole = e2ekit.RunScenario(ctx, t, scenarioFile, wholePrefix).Summary
			return ctx
		}).
		Assess("the merged run has the whole run's cells, states and claims", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cells := func(s report.Summary) (ids []string, states map[string]results.State) {
				states = map[string]results.State{}
				for _, c := range s.Cells {
					ids = append(ids, c.ID)
					states[c.ID] = c.State
				}
				slices.Sort(ids)
				return ids, states
			}
			mIDs, mStates := cells(merged)
			wIDs, wStates := cells(whole)
			if !slices.Equal(mIDs, wIDs) {
				t.Errorf("cells: merged %v, whole %v", mIDs, wIDs)
			}
			for id, s := range wStates {
				if mStates[id] != s || s != results.Complete {
					t.Errorf("cell %s: merged %s, whole %s; want both complete", id, mStates[id], s)
				}
			}
			wClaims := map[int]string{}
			for _, c := range whole.Claims {
				wClaims[c.N] = string(c.Verdict)
			}
			for _, c := range merged.Claims {
				t.Logf("claim %d: merged %s, whole %s: %s", c.N, c.Verdict, wClaims[c.N], c.Evidence)
				if (c.N == 1 || c.N == 2) && string(c.Verdict) != wClaims[c.N] {
					t.Errorf("claim %d: merged %s, whole %s", c.N, c.Verdict, wClaims[c.N])
				}
			}
			return ctx
		}).
		Assess("JUnit, the site and the job summary were written", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, p := range []string{"junit/junit.xml", "site/index.html", "site/index.json", "summary.md", "plan.json"} {
				if m, _ := filepath.Glob(filepath.Join(out, "nightly-local-*", p)); len(m) != 1 {
					t.Errorf("%s: found %v, want one", p, m)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
