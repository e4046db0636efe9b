//go:build e2e

// Package kit tests the e2e kit itself (test/e2e/e2ekit): a suite whose
// Setup fails after making a cluster and raising host sysctls, run in a
// subprocess of TestE2EFailedSetupLeavesNothing, must leave no cluster,
// container, network namespace or raised sysctl. Where Docker cannot run,
// the test fails and says why: it never skips.
package kit

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: the broken suite brings up its own.
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
