package kind

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"labrun.dev/labrun/pkg/cluster"
)

// fakeNetwork is a PodNetwork with a fixed pod subnet (the published ones,
// Calico and Weave, give 10.244.0.0/16: pkg/addons.PublishedPodSubnet).
type fakeNetwork struct{ subnet string }

func (f fakeNetwork) Name() string                                    { return "fake" }
func (f fakeNetwork) PodSubnet() string                               { return f.subnet }
func (f fakeNetwork) Install(context.Context, *cluster.Cluster) error { return nil }

// A pod network of its own makes kind start the nodes without its default
// CNI (disableDefaultCNI: the node image's labnet is not installed) and with
// the network's pod subnet, over the spec's; without one, kind installs the
// default CNI in the spec's subnet.
func TestKindConfigWithPodNetwork(t *testing.T) {
	for _, tc := range []struct {
		name        string
		net         cluster.PodNetwork
		specSubnet  string
		wantSubnet  string
		wantDisable bool
	}{
		{"published network", fakeNetwork{"10.244.0.0/16"}, "", "10.244.0.0/16", true},
		{"network subnet wins", fakeNetwork{"10.32.0.0/12"}, "10.244.0.0/16", "10.32.0.0/12", true},
		{"network without a subnet", fakeNetwork{""}, "10.250.0.0/16", "10.250.0.0/16", true},
		{"default network", nil, "10.244.0.0/16", "10.244.0.0/16", false},
	} {
		s := cluster.DefaultSpec()
		s.Name, s.NodeImage, s.PodSubnet, s.PodNetwork = "labrun-test", "labrun/node:v1.36.1", tc.specSubnet, tc.net
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cfg := kindConfig(s)
		if cfg.Networking.DisableDefaultCNI != tc.wantDisable || cfg.Networking.PodSubnet != tc.wantSubnet {
			t.Errorf("%s: disableDefaultCNI %v, podSubnet %q; want %v, %q", tc.name,
				cfg.Networking.DisableDefaultCNI, cfg.Networking.PodSubnet, tc.wantDisable, tc.wantSubnet)
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), "disableDefaultCNI: true\n"); got != tc.wantDisable {
			t.Errorf("%s: kind config file has disableDefaultCNI: true = %v:\n%s", tc.name, got, b)
		}
		var back v1alpha4.Cluster
		if err := yaml.UnmarshalStrict(b, &back); err != nil {
			t.Errorf("%s: kind config does not read back strictly: %v", tc.name, err)
		}
		if back.Networking.PodSubnet != tc.wantSubnet || back.Networking.DisableDefaultCNI != tc.wantDisable {
			t.Errorf("%s: read back as %+v", tc.name, back.Networking)
		}
	}
}
