package workload

import (
	"strings"
	"testing"
)

func TestCellNamespace(t *testing.T) {
	ns := CellNamespace("run-1", "default_glibc_none")
	if ns.Name != Namespace("default_glibc_none") || !strings.HasPrefix(ns.Name, "labrun-") {
		t.Errorf("namespace %s", ns.Name)
	}
	if ns.Labels[LabelRun] != "run-1" || ns.Labels[LabelCell] != CellHash("default_glibc_none") {
		t.Errorf("labels %v", ns.Labels)
	}
}

func TestProbePodsSpreadOverNodes(t *testing.T) {
	cell := cellFor(t, "musl", "single-request-reopen")
	cell.Load.PodsPerNode = 2
	pods, err := ProbePods(cell, []string{"lab-worker", "lab-worker2"}, "r", "ns", "probe-musl:x")
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	names := map[string]bool{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		names[p.Name] = true
		if p.Namespace != "ns" || p.Spec.Containers[0].Image != "probe-musl:x" {
			t.Errorf("pod %s: namespace %s image %s", p.Name, p.Namespace, p.Spec.Containers[0].Image)
		}
	}
	if len(pods) != 4 || len(names) != 4 || perNode["lab-worker"] != 2 || perNode["lab-worker2"] != 2 {
		t.Errorf("%d pods, %d names, per node %v; want 2 on each node", len(pods), len(names), perNode)
	}
	notRun := cell
	notRun.NotRun = "images missing"
	if _, err := ProbePods(notRun, []string{"lab-worker"}, "r", "ns", "i"); err == nil {
		t.Error("a cell that is not run must not get pods")
	}
	if _, err := ProbePods(cell, nil, "r", "ns", "i"); err == nil {
		t.Error("no node, no pod: an error")
	}
}
