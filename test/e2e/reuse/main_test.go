//go:build e2e

// Package reuse tests one cluster serving a family of shapes end to end: a
// run whose shapes differ only by undoable cluster-level mitigations makes
// one kind cluster for them, and measures what a cluster of each shape's own
// measures; the undo of each mitigation returns the cluster's state, and a
// rule left by hand is found.
package reuse

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: each lab.Run brings up its own (e2ekit.Keep
// removes whatever is left).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
