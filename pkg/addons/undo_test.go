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

func TestLabnetMasquerade(t *testing.T) {
	const plainRule = `-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment --comment "labnet: masquerade traffic leaving the pod network" -j MASQUERADE`
	const kubeProxy = `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`
	for _, tc := range []struct {
		name   string
		save   string
		plain  int
		random int
	}{
		{"the plain rule back", "*nat\n" + plainRule + "\n" + kubeProxy + "\nCOMMIT", 1, 0},
		{"between the two (the old rule gone, the new not yet)", "*nat\n" + kubeProxy + "\nCOMMIT", 0, 0},
		{"still random-fully", "*nat\n" + plainRule + " --random-fully\n" + kubeProxy + "\nCOMMIT", 0, 1},
	} {
		plain, random := labnetMasquerade(tc.save)
		if plain != tc.plain || len(random) != tc.random {
			t.Errorf("%s: %d plain, %d random-fully; want %d, %d", tc.name, plain, len(random), tc.plain, tc.random)
		}
	}
}
