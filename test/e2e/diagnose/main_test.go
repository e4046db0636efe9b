//go:build e2e

// Package diagnose tests `labrun diagnose` against a lab kind cluster given
// only its kubeconfig, as a user's cluster would be: the default shape on the
// bare kernel (facts, a measurement with counters, "not affected", nothing
// left, under 90 s), a service account bound to the read-only manifest of
// docs/diagnose (facts only, nothing made), and Ctrl-C in the middle of the
// measurement (nothing left); then, on the same cluster changed step by step
// (shapes_test.go), admission policies that refuse what it would make, the
// race emulator, CoreDNS with autopath and NodeLocal DNSCache. It uses its own cluster name, so it never
// touches another suite's cluster.
package diagnose

import (
	"testing"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// name is this suite's cluster (prefix labrun-e2ediag).
const name = "labrun-e2ediag"

var suite = e2ekit.New(lab.UpOptions{Name: name})

// TestMain makes the suite's cluster and removes it.
func TestMain(m *testing.M) { suite.Run(m) }
