package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/lab"
)

// TestExitCodes checks the one exit-code table on every kind of outcome, as
// commands return them.
func TestExitCodes(t *testing.T) {
	results := t.TempDir()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		args []string
		want int
	}{
		{"version", context.Background(), []string{"version"}, ExitOK},
		{"unknown command", context.Background(), []string{"bogus"}, ExitUsage},
		{"unknown subcommand of a group", context.Background(), []string{"cluster", "sideways"}, ExitUsage},
		{"unknown flag", context.Background(), []string{"plan", "--bogus", "x.yaml"}, ExitUsage},
		{"too many arguments", context.Background(), []string{"report", "a", "b"}, ExitUsage},
		{"no argument", context.Background(), []string{"validate"}, ExitUsage},
		{"missing scenario", context.Background(), []string{"plan", "absent.yaml"}, ExitUsage},
		{"bad scenario", context.Background(), []string{"validate", "../../pkg/scenario/testdata/invalid-values.yaml"}, ExitUsage},
		{"compare of one run", context.Background(), []string{"compare", "a"}, ExitUsage},
		{"export of no run", context.Background(), []string{"export", "--format", "csv", "absent"}, ExitUsage},
		{"site of no run", context.Background(), []string{"site", "-o", results + "/site", "absent"}, ExitUsage},
		{"report of no run", context.Background(), []string{"report", "absent"}, ExitUsage},
		{"run --parallel 0", context.Background(), []string{"run", "--results", results, "--parallel", "0", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run --parallel -2", context.Background(), []string{"run", "--results", results, "--parallel=-2", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run --parallel many", context.Background(), []string{"run", "--results", results, "--parallel", "many", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run --cells-at-once 0", context.Background(), []string{"run", "--results", results, "--cells-at-once", "0", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run --cells-at-once 5", context.Background(), []string{"run", "--results", results, "--cells-at-once", "5", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run --cells-at-once 2 on an existing cluster", context.Background(), []string{"run", "--results", results, "--kubeconfig", "/nonexistent", "--cells-at-once", "2", "../../scenarios/baseline.yaml"}, ExitUsage},
		{"run interrupted", cancelled, []string{"run", "--results", results, "../../scenarios/baseline.yaml"}, ExitInterrupted},
		// Interrupted after its work was done (Ctrl-C while the report is
		// written): still 130.
		{"interrupted, finished anyway", cancelled, []string{"version"}, ExitInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(tt.ctx, Streams{Out: new(discard), Err: new(discard)}, tt.args)
			if got := ExitCode(tt.ctx, err); got != tt.want {
				t.Errorf("labrun %v: exit %d (%v), want %d", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestExitCodeOfErrors(t *testing.T) {
	bg := context.Background()
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("docker does not answer"), ExitError},
		{UsageError{errors.New("bad flag")}, ExitUsage},
		{fmt.Errorf("run x: %w", ErrExpectation), ExitExpectation},
		{fmt.Errorf("run x: interrupted (%w)", context.Canceled), ExitInterrupted},
		{errors.Join(fmt.Errorf("1 of 4 expectations broken: %w", ErrExpectation), fmt.Errorf("run x: %w", ErrExpectation)), ExitExpectation},
		// A run that failed exits 1 even if an expectation is broken too:
		// the failure may be why, and 3 means the run completed.
		{errors.Join(errors.New("cluster failed"), fmt.Errorf("%w", ErrExpectation)), ExitError},
		{errors.Join(fmt.Errorf("%w", ErrExpectation), errors.New("2 expectations not evaluated")), ExitError},
		{fmt.Errorf("run x: %w; %w", ErrExpectation, errors.New("cell failed")), ExitError},
		// An interrupt wins over everything.
		{errors.Join(fmt.Errorf("run x: %w", context.Canceled), ErrExpectation), ExitInterrupted},
	}
	for _, tt := range tests {
		if got := ExitCode(bg, tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestMainExitCodes runs the built binary: the code reaches the shell.
func TestMainExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "labrun")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/labrun").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for args, want := range map[string]int{"version": ExitOK, "bogus": ExitUsage, "validate": ExitUsage} {
		cmd := exec.Command(bin, args)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		err := cmd.Run()
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("labrun %s: exit %d, want %d", args, got, want)
		}
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

func TestParseParallel(t *testing.T) {
	for v, want := range map[string]int{"1": 1, "4": 4, "auto": lab.ParallelAuto} {
		if got, err := parseParallel(v); err != nil || got != want {
			t.Errorf("parseParallel(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"0", "-1", "", "two", "2.5", "Auto"} {
		if _, err := parseParallel(v); err == nil || !strings.Contains(err.Error(), "want a number of clusters ≥ 1, or auto") {
			t.Errorf("parseParallel(%q): err = %v", v, err)
		}
	}
}
