package hostcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// thisHost is the kernel FACTS.md measured on the lab's machines.
var thisHost = Kernel{Findings: []Finding{
	{Feature: IPVS, State: Absent, Evidence: "CONFIG_IP_VS not set"},
	{Feature: Netem, State: Absent, Evidence: "CONFIG_NET_SCH_NETEM not set"},
	{Feature: OpenvSwitch, State: Absent, Evidence: "CONFIG_OPENVSWITCH not set"},
	{Feature: IPIP, State: Absent, Evidence: "CONFIG_NET_IPIP not set"},
	{Feature: VXLAN, State: Present, Evidence: "ip link add … type vxlan succeeded"},
	{Feature: NFQueue, State: Present, Evidence: "iptables … -j NFQUEUE succeeded"},
}}

var withIPVS = Kernel{Findings: []Finding{{Feature: IPVS, State: Present}, {Feature: VXLAN, State: Present}, {Feature: OpenvSwitch, State: Present}}}

func shape(podNetwork, kubeProxy, dns string) scenario.Cluster {
	return scenario.Cluster{PodNetwork: podNetwork, KubeProxy: kubeProxy, DNS: scenario.DNS{Server: dns, Replicas: 2}}
}

func published() scenario.Cluster {
	c := shape("default", "iptables", "coredns")
	c.NodeImage = "published"
	return c
}

func haveNone(string) bool { return false }
func haveAll(string) bool  { return true }

func TestNotRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		k     Kernel
		c     scenario.Cluster
		have  HaveImage
		wants []string // substrings; none means it runs
	}{
		{"default shape runs", thisHost, shape("default", "iptables", "coredns"), haveNone, nil},
		{"nftables runs", thisHost, shape("kube-router", "nftables", "coredns"), haveNone, nil},
		{"ipvs without IPVS", thisHost, shape("default", "ipvs", "coredns"), haveAll,
			[]string{"kubeProxy ipvs: kernel lacks IPVS: CONFIG_IP_VS not set"}},
		{"ipvs with IPVS", withIPVS, shape("default", "ipvs", "coredns"), haveNone, nil},
		{"calico without its images", thisHost, shape("calico", "iptables", "coredns"), haveNone,
			[]string{"podNetwork calico: images quay.io/calico/node:v3.31.3", "quay.io/calico/cni:v3.31.3",
				"github.com/projectcalico/api is refused by the Go module proxy", "no registry is reachable",
				"labrun images pull calico-node calico-cni calico-kube-controllers", "labrun images import"}},
		{"calico with its images", thisHost, shape("calico", "iptables", "coredns"), haveAll, nil},
		{"calico without VXLAN", Kernel{}, shape("calico", "iptables", "coredns"), haveAll,
			[]string{"podNetwork calico (VXLAN mode): kernel support for VXLAN unknown"}},
		{"weave without its images", thisHost, shape("weave", "iptables", "coredns"), haveNone,
			[]string{"podNetwork weave: images docker.io/weaveworks/weave-kube:2.8.1", "github.com/weaveworks/weave is refused", "with them Weave Net would run in sleeve (kernel lacks openvswitch"}},
		{"kube-dns without its images", thisHost, shape("default", "iptables", "kube-dns"), haveNone,
			[]string{"dns kube-dns: images registry.k8s.io/dns/k8s-dns-kube-dns:1.22.28@sha256:df85f157", "k8s.io/dns is refused"}},
		{"the published node image missing", thisHost, published(), haveNone,
			[]string{"nodeImage published: image docker.io/kindest/node:v1.37.0@sha256:a1ed56cf", "the lab takes kind's node image as kind publishes it",
				"labrun images pull kind-node", "labrun images import"}},
		{"the published node image stored", thisHost, published(), haveAll, nil},
		{"every reason at once", thisHost, shape("weave", "ipvs", "kube-dns"), haveNone,
			[]string{"kernel lacks IPVS", "podNetwork weave:", "dns kube-dns:"}},
	} {
		got := NotRun(tc.k, tc.c, tc.have)
		if len(tc.wants) == 0 && got != "" {
			t.Errorf("%s: NotRun = %q, want it to run", tc.name, got)
		}
		for _, w := range tc.wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s: NotRun = %q, want it to contain %q", tc.name, got, w)
			}
		}
	}
}

// InCache finds an image imported into the artifact cache under the name the
// published list gives it.
func TestNotRunFindsImportedImages(t *testing.T) {
	cache := t.TempDir()
	list, err := images.LoadPublished()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if !p.Needed("dns=kube-dns") {
			continue
		}
		tag, _ := name.NewTag(p.Ref)
		f := filepath.Join(t.TempDir(), p.Name+".tar")
		if err := tarball.WriteToFile(f, tag, empty.Image); err != nil {
			t.Fatal(err)
		}
		if _, err := images.Import(cache, f); err != nil {
			t.Fatal(err)
		}
	}
	if r := NotRun(thisHost, shape("default", "iptables", "kube-dns"), InCache(cache)); r != "" {
		t.Errorf("kube-dns images imported, NotRun = %q", r)
	}
	if r := NotRun(thisHost, shape("calico", "iptables", "coredns"), InCache(cache)); !strings.Contains(r, "calico") {
		t.Errorf("calico images not imported, NotRun = %q", r)
	}
}

func TestWeaveMode(t *testing.T) {
	if m := WeaveMode(thisHost); m != "sleeve (kernel lacks openvswitch: CONFIG_OPENVSWITCH not set)" {
		t.Errorf("WeaveMode here = %q", m)
	}
	if m := WeaveMode(withIPVS); m != "fastdp" {
		t.Errorf("WeaveMode with openvswitch = %q", m)
	}
}
