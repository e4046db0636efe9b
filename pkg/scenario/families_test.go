package scenario

import (
	"slices"
	"strings"
	"testing"
)

// Two clusters, each plain and with four cluster-level mitigations (three
// undoable, nodelocaldns not): ten shapes of one cell.
const familiesYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: families}
clusters:
  - {name: default}
  - {name: three, dns: {server: coredns, replicas: 3}}
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
	if len(shapes) != 10 {
		t.Fatalf("the test wants 10 shapes: %v", ids)
	}
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
	for _, tc := range []struct {
		reuse bool
		want  string
	}{
		{true, "[default default+autopath default+random-fully default+arp-gc] [default+nodelocaldns] " +
			"[three three+autopath three+random-fully three+arp-gc] [three+nodelocaldns]"},
		{false, "[default] [default+nodelocaldns] [default+autopath] [default+random-fully] [default+arp-gc] " +
			"[three] [three+nodelocaldns] [three+autopath] [three+random-fully] [three+arp-gc]"},
	} {
		if got := named(Families(shapes, tc.reuse)); got != tc.want {
			t.Errorf("reuse %v:\n got %s\nwant %s", tc.reuse, got, tc.want)
		}
	}
	// A family is where its first shape is: without the plain shape (its
	// cells complete, on a resume), the first undoable one brings it up.
	var rest []int
	for _, f := range Families(shapes[2:5], true) {
		rest = append(rest, len(f))
	}
	if !slices.Equal(rest, []int{3}) {
		t.Errorf("without the plain shape (%v): families of %v shapes, want one of 3", ids[2:5], rest)
	}
}

var familyCells = []string{"default_glibc_none", "default+autopath_glibc_autopath", "default+random-fully_glibc_random-fully",
	"default+arp-gc_glibc_arp-gc", "default+nodelocaldns_glibc_nodelocaldns"}
