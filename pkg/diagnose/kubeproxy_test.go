package diagnose

import (
	"strings"
	"testing"
)

func TestKubeProxyMode(t *testing.T) {
	for _, tc := range []struct {
		file, mode, source string
	}{
		{"kubeproxy/kubeadm.yaml", "iptables", "kube-proxy key config.conf (mode empty"},
		{"kubeproxy/kubeadm-ipvs.yaml", "ipvs", "kube-proxy key config.conf"},
		{"kubeproxy/kind-nftables.yaml", "nftables", "kube-proxy key config.conf"},
		{"kubeproxy/eks.yaml", "iptables", "kube-proxy-config key config"},
		{"kubeproxy/gke-static.yaml", "iptables", "neither --proxy-mode nor"},
		{"kubeproxy/flag-ipvs.yaml", "ipvs", "--proxy-mode of container kube-proxy"},
		{"cni/cilium-kpr.yaml", "", "no kube-proxy"},
	} {
		f := loadFixture(t, tc.file)
		got := KubeProxyMode(f.configMaps, kubeProxySpec(f.daemonSet("kube-proxy"), f.pods))
		if got.Mode != tc.mode || !strings.Contains(got.Source, tc.source) {
			t.Errorf("%s: got %+v, want mode %q from %q", tc.file, got, tc.mode, tc.source)
		}
	}
}

func TestFlagValue(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
		ok   bool
	}{
		{[]string{"kube-proxy", "--proxy-mode=nftables"}, "nftables", true},
		{[]string{"kube-proxy", "--proxy-mode", "ipvs"}, "ipvs", true},
		{[]string{"sh", "-c", "exec kube-proxy --proxy-mode='ipvs' --v=2"}, "ipvs", true},
		{[]string{"kube-proxy", "--proxy-mode-x=1"}, "", false},
		{[]string{"kube-proxy", "--proxy-mode"}, "", false},
	} {
		got, ok := flagValue(tc.argv, "--proxy-mode")
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %q %v", tc.argv, got, ok)
		}
	}
}
