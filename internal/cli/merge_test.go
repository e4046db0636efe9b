package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/resultstest"
)

// TestMergeCommand merges the shards of a synthetic run with `labrun merge`,
// then reads the merged run with report, compare (against the whole run:
// nothing differs), export and site, as on one run.
func TestMergeCommand(t *testing.T) {
	root := t.TempDir()
	plain, err := resultstest.WriteRun(root, "whole", reportScenario, raceLike)
	if err != nil {
		t.Fatal(err)
	}
	expecting, err := resultstest.WriteRun(root, "expecting", reportScenario+"expect:\n  claims: {\"3\": fail}\n", raceLike)
	if err != nil {
		t.Fatal(err)
	}
	split := func(run results.RunDir) []string {
		ss, err := resultstest.Shards(run, filepath.Join(root, "shards"), 2)
		if err != nil {
			t.Fatal(err)
		}
		return []string{ss[0].Dir, ss[1].Dir}
	}
	sh, esh := split(plain), split(expecting)
	merged := filepath.Join(root, "merged")
	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, errs []string // each must be in stdout, in stderr (or the error)
	}{
		{"two shards", []string{"merge", sh[0], sh[1], "-o", merged}, ExitOK,
			[]string{"4 cells: 4 complete, 0 incomplete, 0 not run\n", filepath.Join(merged, "index.html") + "\n"},
			[]string{"merged 2 runs into " + merged + ": cells taken 4, recorded as incomplete 0; files linked "}},
		{"report", []string{"report", merged}, ExitOK, []string{"4 cells: 4 complete"}, nil},
		{"compare with the whole run", []string{"compare", plain.Dir, merged}, ExitOK, []string{"\n0 of 8 tests significant: 0 worse, 0 better"}, nil},
		{"export", []string{"export", merged, "--format", "csv,junit,benchfmt,hdr", "-o", filepath.Join(root, "exports")}, ExitOK,
			[]string{"cells.csv\n", "junit.xml\n"}, nil},
		{"site", []string{"site", merged, "-o", filepath.Join(root, "site")}, ExitOK, []string{"1 runs (1 read now"}, nil},
		{"again into the merged run", []string{"merge", sh[0], sh[1], "-o", merged}, ExitUsage, nil,
			[]string{"exists and is not empty; merge never writes over a run"}},
		{"a shard missing", []string{"merge", sh[0], "-o", filepath.Join(root, "part")}, ExitOK,
			[]string{"4 cells: 2 complete, 2 incomplete, 0 not run\n"},
			[]string{"shard 2/2 missing: 2 cells\n", "  default_glibc_single-request-reopen: shard 2/2 gave no result\n"}},
		{"an expectation broken", []string{"merge", esh[0], esh[1], "-o", filepath.Join(root, "broken")}, ExitExpectation,
			[]string{"expectation broken: claim 3: fail: measured pass (" + filepath.Join(root, "broken", "scenario.yaml") + ":"}, nil},
		{"an expectation not evaluated", []string{"merge", esh[1], "-o", filepath.Join(root, "unjudged")}, ExitError,
			[]string{"expectation not evaluated: claim 3: fail"}, []string{"shard 1/2 missing: 2 cells"}},
		{"different scenarios", []string{"merge", sh[0], esh[1], "-o", filepath.Join(root, "mixed")}, ExitUsage, nil,
			[]string{"have different scenarios: the same cells, but the resolved scenarios differ at line "}},
		{"no -o", []string{"merge", sh[0]}, ExitUsage, nil, []string{"-o RUN is required"}},
		{"no run", []string{"merge", "-o", filepath.Join(root, "none")}, ExitUsage, nil, []string{"requires at least 1 arg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			ctx := context.Background()
			err := Run(ctx, Streams{In: strings.NewReader(""), Out: &out, Err: &errs}, tt.args)
			if got := ExitCode(ctx, err); got != tt.code {
				t.Fatalf("labrun %v: exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", tt.args, got, err, tt.code, out.String(), errs.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			e := errs.String()
			if err != nil {
				e += err.Error()
			}
			for _, w := range tt.errs {
				if !strings.Contains(e, w) {
					t.Errorf("stderr and error lack %q:\n%s", w, e)
				}
			}
		})
	}
	for _, d := range []string{"mixed", "none"} {
		if _, err := os.Stat(filepath.Join(root, d)); err == nil {
			t.Errorf("a refused merge wrote %s", d)
		}
	}
}
