package scenario

import "testing"

// Pinned tells the fields a file wrote from those the defaults filled.
func TestPinned(t *testing.T) {
	const head = "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\n"
	for _, tc := range []struct {
		name, yaml string
		want       Pinned
	}{
		{"defaults", head + "clusters:\n  - name: a\n", Pinned{}},
		{"version", head + "clusters:\n  - name: a\n    kubernetes: v1.36.1\n", Pinned{Kubernetes: true}},
		{"control planes", head + "clusters:\n  - name: a\n    nodes: {controlPlanes: 1}\n", Pinned{ControlPlanes: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("s.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Clusters[0].Pinned; got != tc.want {
				t.Errorf("Pinned = %+v, want %+v", got, tc.want)
			}
		})
	}
}
