package scenario

import (
	"slices"
	"strings"
	"testing"
)

// Three clusters (the third on kube-router), each plain and with four
// cluster-level mitigations (three undoable, nodelocaldns not): fifteen
// shapes of one cell.
const familiesYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: families}
clusters:
  - {name: default}
  - {name: three, dns: {server: coredns, replicas: 3}}
  - {name: kr, podNetwork: kube-router}
workload:
  resolvers: [glibc]
  mitigations: [none, nodelocaldns, autopath, random-fully, arp-gc]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 1s}
`

func TestFamilies(t *testing.T) {
	sc, err := Parse("families.yaml", []byte(familiesYAML))
	if err != nil {
		t.Fatal(err)
	}
	shapes := Plan(sc.Expand())
	var ids []string
	for _, ps := range shapes {
		ids = append(ids, ps.Shape.ID)
	}
	if len(shapes) != 15 {
		t.Fatalf("the test wants 15 shapes: %v", ids)
	}
	kubeRouter := " [kr] [kr+nodelocaldns] [kr+autopath] [kr+random-fully] [kr+arp-gc]"
	named := func(fams [][]int) string {
		var out []string
		for _, f := range fams {
			var s []string
			for _, i := range f {
				s = append(s, ids[i])
			}
			out = append(out, "["+strings.Join(s, " ")+"]")
		}
		return strings.Join(out, " ")
	}
	// Shapes with other lanes than the plain one (a resume: fewer cells
	// left) are not in its family: they would have other workers.
	otherLanes := make([]int, len(shapes))
	for i := range otherLanes {
		otherLanes[i] = 2
	}
	otherLanes[3] = 1 // default+random-fully
	for _, tc := range []struct {
		name  string
		lanes []int
		reuse bool
		want  string
	}{
		{"reuse", nil, true, "[default default+autopath default+random-fully default+arp-gc] [default+nodelocaldns] " +
			"[three three+autopath three+random-fully three+arp-gc] [three+nodelocaldns]" + kubeRouter},
		{"no reuse", nil, false, "[default] [default+nodelocaldns] [default+autopath] [default+random-fully] [default+arp-gc] " +
			"[three] [three+nodelocaldns] [three+autopath] [three+random-fully] [three+arp-gc]" + kubeRouter},
		{"lanes differ", otherLanes, true, "[default default+autopath default+arp-gc] [default+nodelocaldns] [default+random-fully] " +
			"[three three+autopath three+random-fully three+arp-gc] [three+nodelocaldns]" + kubeRouter},
	} {
		if got := named(Families(shapes, tc.lanes, tc.reuse)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	// A family is where its first shape is: without the plain shape (its
	// cells complete, on a resume), the first undoable one brings it up.
	var rest []int
	for _, f := range Families(shapes[2:5], nil, true) {
		rest = append(rest, len(f))
	}
	if !slices.Equal(rest, []int{3}) {
		t.Errorf("without the plain shape (%v): families of %v shapes, want one of 3", ids[2:5], rest)
	}
}

// The published node image's pod network (kindnet) was never checked by a
// reset: each of its shapes gets a cluster of its own.
func TestFamiliesPublishedNodeKeepsItsOwn(t *testing.T) {
	sc, err := Parse("published.yaml", []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: published}
clusters:
  - {name: built}
  - {name: pub, nodeImage: published}
workload:
  mitigations: [none, autopath]
  load: {duration: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	shapes := Plan(sc.Expand())
	var got []string
	for _, f := range Families(shapes, nil, true) {
		var s []string
		for _, i := range f {
			s = append(s, shapes[i].Shape.ID)
		}
		got = append(got, "["+strings.Join(s, " ")+"]")
	}
	if want := "[built built+autopath] [pub] [pub+autopath]"; strings.Join(got, " ") != want {
		t.Errorf("families %s, want %s", strings.Join(got, " "), want)
	}
	if k := shapes[2].Shape.Cluster.Kubernetes; k != PublishedNodeKubernetes {
		t.Errorf("the published shape's kubernetes = %s, want %s", k, PublishedNodeKubernetes)
	}
}
