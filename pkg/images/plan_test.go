package images

import (
	"strings"
	"testing"
)

func TestPlanRoots(t *testing.T) {
	v, err := LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	k, err := v.Kube(v.DefaultKubernetes())
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(v, k, "/repo")
	for _, tc := range []struct {
		name    string
		addons  []string
		want    []string // step names after the lab node image
		wantErr string
	}{
		{name: "nil builds every addon", addons: nil, want: []string{"image/kube-router", "image/dnsmasq"}},
		{name: "none", addons: []string{}, want: nil},
		{name: "one", addons: []string{"dnsmasq"}, want: []string{"image/dnsmasq"}},
		{name: "unknown", addons: []string{"calico"}, wantErr: `addon image "calico" is not in the image plan; valid: kube-router, dnsmasq`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots, err := p.Roots(tc.addons)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if roots[0] != p.LabNode {
				t.Errorf("first root = %s, want the lab node image", roots[0].Name)
			}
			var got []string
			for _, s := range roots[1:] {
				got = append(got, s.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("addon roots = %v, want %v", got, tc.want)
			}
		})
	}
}

// The lab node image is the plain node image with the lab's own images
// added: a layer of its own, so a change to this repository's code rebuilds
// only that layer.
func TestPlanLabNode(t *testing.T) {
	v, err := LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	k, _ := v.Kube(v.DefaultKubernetes())
	p := NewPlan(v, k, "/repo")
	if p.LabNode.Image != LabNodeImage(k) || p.Node.Image != NodeImage(k) {
		t.Fatalf("images %q, %q", p.LabNode.Image, p.Node.Image)
	}
	deps := map[*Step]bool{}
	for _, d := range p.LabNode.Deps {
		deps[d] = true
	}
	for _, s := range append([]*Step{p.Node}, p.Lab...) {
		if !deps[s] {
			t.Errorf("lab node image does not depend on %s", s.Name)
		}
	}
}
