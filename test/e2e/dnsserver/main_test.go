//go:build e2e

// Package dnsserver tests the cluster DNS shapes and what the runner
// captures on the DNS path: lab.Run on a cluster whose DNS is dnsmasq in
// front of CoreDNS (testdata/dnsmasq.yaml), kept afterwards so the test can
// look at the VIP's endpoints, at dnsmasq's counters and at the nodes, then
// CoreDNS's autopath turned on and its effect on queries per lookup
// measured with the runner's captures. Where Docker cannot run, the run
// fails and says why: it never skips.
package dnsserver

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own.
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
