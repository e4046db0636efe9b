//go:build e2e

// Package pubnode tests a cluster of the published node image end to end
// (nodeImage: published): the node image pulled through a registry mirror at
// its pinned digest, loaded into Docker, kind's nodes started from it, the
// lab's own images (and only those) built and loaded into the nodes, and the
// cells run. This machine reaches no registry and has no kindest/node, so a
// registry in the test process serves the lab's own plain node image under
// kindest/node's name, without tcpdump as kindest/node has none.
package pubnode

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own (e2ekit.Keep removes
// whatever is left).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
