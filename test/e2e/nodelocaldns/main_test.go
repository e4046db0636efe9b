//go:build e2e

// Package nodelocaldns tests the nodelocaldns mitigation end to end: lab.Run
// brings up a cluster with NodeLocal DNSCache (as node-cache sets itself up;
// a per-node CoreDNS where the node-cache image is not in the store) and runs
// one glibc cell under the race emulator; the test then checks the set-up on
// every node, that a pod's query to the DNS VIP leaves no conntrack entry,
// and that no lookup of the cell was delayed. Where Docker cannot run, the
// run fails and says why: it never skips.
package nodelocaldns

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own (kept until the test
// has looked at it, then deleted).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
