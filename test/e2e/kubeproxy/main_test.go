//go:build e2e

// Package kubeproxy tests a lab cluster whose kube-proxy runs in nftables
// mode (testdata/nftables.yaml). It uses its own cluster name, so it never
// touches the main e2e suite's cluster.
package kubeproxy

import (
	"testing"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

var suite = e2ekit.New(lab.UpOptions{Name: "labrun-e2e-nft", Scenario: "testdata/nftables.yaml"})

func TestMain(m *testing.M) { suite.Run(m) }
