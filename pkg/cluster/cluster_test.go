package cluster

import "testing"

func TestWorkers(t *testing.T) {
	nodes := []Node{
		{Name: "lab-control-plane", Role: "control-plane"},
		{Name: "lab-worker", Role: "worker"},
		{Name: "lab-worker2", Role: "worker"},
	}
	for _, tc := range []struct {
		nodes []Node
		want  []string
	}{
		{nodes, []string{"lab-worker", "lab-worker2"}},
		{nodes[:1], []string{"lab-control-plane"}}, // no workers: workloads go to the control plane
	} {
		got := (&Cluster{Nodes: tc.nodes}).Workers()
		if len(got) != len(tc.want) {
			t.Fatalf("Workers() = %v, want %v", got, tc.want)
		}
		for i := range got {
			if got[i].Name != tc.want[i] {
				t.Errorf("Workers()[%d] = %s, want %s", i, got[i].Name, tc.want[i])
			}
		}
	}
}
