package collect

import (
	"context"
	"testing"

	"labrun.dev/labrun/internal/version"
	"labrun.dev/labrun/pkg/results"
)

// env.json names the labrun build, which labrun merge compares.
func TestHostEnvNamesTheBuild(t *testing.T) {
	e := HostEnv(context.Background(), nil)
	if got := e.Extra[results.EnvLabrunVersion]; got == "" || got != version.String() {
		t.Errorf("extra.%s = %q, want %q", results.EnvLabrunVersion, got, version.String())
	}
	if e.Kernel == "" {
		t.Error("no kernel")
	}
}
