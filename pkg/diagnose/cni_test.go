package diagnose

import (
	"reflect"
	"strings"
	"testing"
)

func TestFindCNIs(t *testing.T) {
	f := loadFixture(t, "cni/many.yaml")
	got := FindCNIs(f.daemonSets)
	var names []string
	for _, c := range got {
		names = append(names, c.Name+"@"+c.DaemonSet)
	}
	want := []string{"aws-vpc-cni@kube-system/aws-node", "calico@calico-system/calico-node", "flannel@kube-flannel/kube-flannel-ds", "weave@kube-system/weave-net"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("got %v, want %v", names, want)
	}
	if !strings.Contains(got[3].Note, "WEAVE_NO_FASTDP") {
		t.Errorf("weave note %q does not say fastdp is off", got[3].Note)
	}
	if cs := FindCNIs(loadFixture(t, "cni/cilium-kpr.yaml").daemonSets); len(cs) != 1 || cs[0].Name != "cilium" {
		t.Errorf("cilium: got %+v (cilium-envoy is not a pod network)", cs)
	}
}

func TestCiliumConfig(t *testing.T) {
	for _, tc := range []struct {
		file             string
		replaces, socket bool
		note             string
	}{
		{"cni/cilium-kpr.yaml", true, true, "socket LB on"}, // KPR true turns socket LB on unless bpf-lb-sock says false
		{"cni/cilium-hostns-only.yaml", true, false, "per packet"},
		{"cni/cilium-legacy-partial.yaml", true, true, "socket LB on"},
		{"cni/cilium-off.yaml", false, false, "kube-proxy's netfilter DNAT does"},
	} {
		c := CiliumConfig(loadFixture(t, tc.file).configMaps["cilium-config"])
		if c == nil || c.Replaces != tc.replaces || c.SocketLB != tc.socket || !strings.Contains(c.Note, tc.note) {
			t.Errorf("%s: got %+v", tc.file, c)
		}
	}
	if CiliumConfig(nil) != nil {
		t.Error("no ConfigMap must give no Cilium facts")
	}
}
