//go:build e2e

// Package kuberouter tests the kube-router pod network (podNetwork:
// kube-router, testdata/kube-router.yaml) end to end: lab.Run brings a
// cluster up with kube-router in place of the default network and runs one
// short bare glibc cell on it; the cluster is kept for the checks that
// follow (kube-router on every node, its BGP routes, lookups through the DNS
// VIP and straight to CoreDNS on other nodes, its logs) and deleted at the
// end, even after a failure. Where Docker cannot run, the run fails and says
// why: it never skips.
package kuberouter

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
