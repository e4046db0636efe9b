//go:build e2e

// Package faults interrupts the labrun binary at every stage of a run (the
// image build, the cluster's creation, a cell's set-up, its probes, its
// teardown, the report), kills it, and restarts Docker under it, and checks
// each time that the host is left as it was found, that the run's status
// files say what happened, and that --resume completes the run. The binary
// runs as a user runs it: signals, exit codes and all.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var (
	testenv env.Environment
	labrun  string // the binary under test
)

// TestMain builds labrun once; each test makes and removes its own clusters.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labrun-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	labrun = filepath.Join(dir, "labrun")
	build := exec.Command("go", "build", "-o", labrun, "labrun.dev/labrun/cmd/labrun")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build labrun:", err)
		os.Exit(1)
	}
	testenv = env.NewWithConfig(envconf.New())
	code := testenv.Run(m)
	os.RemoveAll(dir)
	// The suites after this one need Docker: a restart test that failed
	// half-way must not leave the daemon stopped.
	if exec.Command("docker", "info").Run() != nil {
		fmt.Fprintln(os.Stderr, "test/e2e/faults: dockerd does not answer: starting it again")
		if err := startDockerd(); err != nil {
			fmt.Fprintln(os.Stderr, "start dockerd:", err)
			code = 1
		}
	}
	os.Exit(code)
}
