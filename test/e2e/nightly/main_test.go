//go:build e2e

// Package nightly tests make nightly-local end to end: the nightly workflow's
// steps (plan, each shard, merge, JUnit, site) on a two-shape scenario, on
// real kind clusters, against one whole run of the same scenario.
package nightly

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: the shards and the whole run bring up their
// own, deleted when each test ends (e2ekit.Keep).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
