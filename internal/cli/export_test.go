package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

func TestExportCommand(t *testing.T) {
	const yaml = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: tiny}
workload: {resolvers: [glibc], mitigations: [none, single-request-reopen]}
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`
	run, err := resultstest.WriteRun(t.TempDir(), "tiny", yaml, func(scenario.Cell) (resultstest.Cell, bool) {
		return resultstest.Cell{Lookups: 400}, true
	})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		want  int
		files []string // expected under out, relative
	}{
		{"two formats", []string{"export", run.Dir, "--format", "csv", "--format", "junit", "-o", out}, ExitOK, []string{"cells.csv", "junit.xml"}},
		{"comma list", []string{"export", run.Dir, "--format", "benchfmt,hdr", "-o", out}, ExitOK, []string{"bench.txt", "hdr/default_glibc_none.hlog"}},
		{"perfdash with a build", []string{"export", run.Dir, "--format", "perfdash", "--perfdash-build", "7", "-o", out}, ExitOK,
			[]string{"perfdash/labrun-tiny/7/artifacts/DnsLookupLatency_labrun.json", "perfdash/jobs.yaml"}},
		{"perfdash without a start time or build", []string{"export", run.Dir, "--format", "perfdash", "-o", out}, ExitError, nil},
		{"unknown format", []string{"export", run.Dir, "--format", "xlsx"}, ExitUsage, nil},
		{"negative build", []string{"export", run.Dir, "--perfdash-build", "-1"}, ExitUsage, nil},
		{"no run", []string{"export", filepath.Join(out, "absent")}, ExitUsage, nil},
		{"no argument", []string{"export"}, ExitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := Run(context.Background(), Streams{Out: &stdout, Err: new(discard)}, tt.args)
			if got := ExitCode(context.Background(), err); got != tt.want {
				t.Fatalf("labrun %v: exit %d (%v), want %d", tt.args, got, err, tt.want)
			}
			for _, f := range tt.files {
				path := filepath.Join(out, f)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s not written: %v", f, err)
				}
				if !strings.Contains(stdout.String(), path+"\n") {
					t.Errorf("stdout does not list %s:\n%s", path, stdout.String())
				}
			}
		})
	}
	// The default output directory is the run's exports/.
	if err := Run(context.Background(), Streams{Out: new(discard), Err: new(discard)}, []string{"export", run.Dir, "--format", "csv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run.Dir, "exports", "cells.csv")); err != nil {
		t.Error(err)
	}
}
