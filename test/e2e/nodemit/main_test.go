//go:build e2e

// Package nodemit tests the node-level mitigations end to end: lab.Run on a
// scenario with delay-aaaa (a mode of the per-cell agent) and random-fully
// with arp-gc (set up on the cluster's nodes and on the host), then the
// claims they bear on (6 and 10) and what each left on the nodes.
package nodemit

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own, kept until the test
// has looked at them, then deleted (e2ekit.Keep).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
