//go:build e2e

// Package jvm tests the jvm probe back end end to end: lab.Run on kind with
// the race emulator, Java workers with the JVM's address cache off and on,
// without a mitigation and with single-request-reopen, then what the run
// measured (docs/probe.md, the jvm section, has the numbers of
// scenarios/codacy-jvm.yaml).
package jvm

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

// TestMain makes no cluster: lab.Run brings up its own, removed when the test
// ends (e2ekit.Keep).
func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	os.Exit(testenv.Run(m))
}
