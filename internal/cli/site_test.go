package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

func TestSite(t *testing.T) {
	root := t.TempDir()
	results := filepath.Join(root, "results")
	spec := func(c scenario.Cell) (resultstest.Cell, bool) { return resultstest.Cell{Lookups: 300}, true }
	for _, name := range []string{"s-20260101-000000", "s-20260102-000000"} {
		if _, err := resultstest.WriteRun(results, name, "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nworkload: {mitigations: [none, use-vc]}\n", spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(results, "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "site")
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout, or in the error
	}{
		{"a results folder", []string{"site", results, "-o", out}, 0, "3 runs (3 read now, 0 kept from the earlier index; 1 listed as not readable), 2 cell histories"},
		{"again, with one run: the others are kept", []string{"site", filepath.Join(results, "s-20260102-000000"), "-o", out}, 0, "3 runs (1 read now, 2 kept"},
		{"no -o", []string{"site", results}, 2, "-o SITE is required"},
		{"no input", []string{"site", "-o", out}, 2, "requires at least 1 arg"},
		{"an input that is not there", []string{"site", filepath.Join(root, "nope"), "-o", out}, 2, "no such file"},
		{"a site of another schema", []string{"site", results, "-o", filepath.Join(root, "other")}, 2, `field schema is "labrun.dev/site/v0"`},
	}
	if err := os.MkdirAll(filepath.Join(root, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "other", "index.json"), []byte(`{"schema":"labrun.dev/site/v0"}`), 0o644)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, err := runCLI(t, tt.args...)
			if code := ExitCode(context.Background(), err); code != tt.code {
				t.Fatalf("exit %d, want %d: %v", code, tt.code, err)
			}
			text := stdout
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("%q lacks %q", text, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "cells", "default_glibc_use-vc.html")); err != nil {
		t.Errorf("cell history: %v", err)
	}
}
