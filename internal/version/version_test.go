package version

import "testing"

func TestString(t *testing.T) {
	old := Revision
	defer func() { Revision = old }()
	Revision = "e06b395918b6-dirty"
	if got := String(); got != "e06b395918b6-dirty" {
		t.Errorf("with a revision from make build: %q", got)
	}
	Revision = ""
	if got := String(); got == "" {
		t.Error("without one: empty, want the module version or (devel)")
	}
}
