//go:build e2e

// Package e2e tests the lab on a real kind cluster built from the offline
// images: TestMain brings it up and, in Finish, exports its logs and deletes
// it, even after a failure (test/e2e/e2ekit).
package e2e

import (
	"testing"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

var suite = e2ekit.New(lab.UpOptions{Name: "labrun-e2e"})

func TestMain(m *testing.M) { suite.Run(m) }
