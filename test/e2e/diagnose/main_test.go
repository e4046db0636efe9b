//go:build e2e

// Package diagnose tests `labrun diagnose` against a lab kind cluster given
// only its kubeconfig, as a user's cluster would be: the default shape on the
// bare kernel (facts, a measurement with counters, "not affected", nothing
// left, under 90 s), a service account bound to the read-only manifest of
// docs/diagnose (facts only, nothing made), and Ctrl-C in the middle of the
// measurement (nothing left). It uses its own cluster name, so it never
// touches another suite's cluster.
package diagnose

import (
	"fmt"
	"os"
	"testing"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// name is this suite's cluster (prefix labrun-e2ediag).
const name = "labrun-e2ediag"

var suite = e2ekit.New(lab.UpOptions{Name: name})

// TestMain runs the suite only when asked (LABRUN_E2E_DIAGNOSE=1): it has
// not yet passed on a real cluster here, and joins the test command once it
// has (see docs/diagnose.md).
func TestMain(m *testing.M) {
	if os.Getenv("LABRUN_E2E_DIAGNOSE") != "1" {
		fmt.Fprintln(os.Stderr, "test/e2e/diagnose: skipped: not yet passed on a real cluster here; LABRUN_E2E_DIAGNOSE=1 runs it")
		os.Exit(0)
	}
	suite.Run(m)
}
