//go:build e2e

// Package lab tests the runner end to end: lab.Run on a short baseline, on a
// real kind cluster from the offline images (built first if missing), then
// its summary.json and what it left behind. Where Docker cannot run, the run
// fails and says why: it never skips.
package lab

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own, and each test
// removes what its run kept or left (e2ekit.Keep).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
