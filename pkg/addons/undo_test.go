package addons

import (
	"slices"
	"testing"

	"labrun.dev/labrun/pkg/mitigation"
)

// TestUndoableIsTheCatalogs: the runner groups shapes into families by the
// catalog's Undone, and SetUpUndoable must undo each of those.
func TestUndoableIsTheCatalogs(t *testing.T) {
	if undone := mitigation.UndoneIDs(); !slices.Equal(undone, Undoable) {
		t.Errorf("catalog's Undone %v, addons.Undoable %v", undone, Undoable)
	}
}
