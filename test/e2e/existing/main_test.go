//go:build e2e

// Package existing tests `labrun run FILE --kubeconfig K` (the existing
// provider, docs/existing-cluster.md) against a lab kind cluster that
// e2ekit makes, given to the labrun binary by its kubeconfig only, with a
// PATH whose docker and kind record any call: cells complete, env.json
// records the shape read, a mismatching shape is not run with its reason,
// counters are "not read" without --allow-privileged and read with it, the
// race emulator is refused without --allow-race-emulator, and nothing is
// left in the cluster afterwards. It uses its own cluster name.
package existing

import (
	"testing"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// name is this suite's cluster.
const name = "labrun-e2eexist"

var suite = e2ekit.New(lab.UpOptions{Name: name})

// TestMain makes the suite's cluster and removes it.
func TestMain(m *testing.M) { suite.Run(m) }
