package mitigation

import (
	"os"
	"strings"
	"testing"
)

// The catalog and docs/mitigations.md must not drift apart.
func TestDocsListEveryMitigation(t *testing.T) {
	doc, err := os.ReadFile("../../docs/mitigations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Catalog() {
		if !strings.Contains(string(doc), "| `"+m.ID+"` |") {
			t.Errorf("docs/mitigations.md has no row for %s", m.ID)
		}
	}
}
