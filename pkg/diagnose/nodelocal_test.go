package diagnose

import (
	"reflect"
	"testing"
)

func TestFindNodeLocal(t *testing.T) {
	for _, tc := range []struct {
		file      string
		vip       string
		ds        string
		ips       []string
		listen    string
		intercept bool
		forceTCP  []string
		ready     string
	}{
		{"nodelocal/upstream.yaml", "10.96.0.10", "kube-system/node-local-dns", []string{"169.254.20.10", "10.96.0.10"}, "169.254.20.10", true,
			[]string{"service kube-dns-upstream (__PILLAR__CLUSTER__DNS__)"}, "3/3"},
		{"nodelocal/kubespray-ipvs.yaml", "10.233.0.3", "kube-system/nodelocaldns", []string{"169.254.25.10"}, "169.254.25.10", false,
			[]string{"10.233.0.3"}, "3/4"},
		{"nodelocal/lab-standin.yaml", "10.96.0.10", "kube-system/node-local-dns", []string{"169.254.20.10", "10.96.0.10"}, "169.254.20.10", true,
			[]string{"10.96.200.11"}, "3/3"},
	} {
		f := loadFixture(t, tc.file)
		n := FindNodeLocal(f.daemonSets, f.configMaps, tc.vip)
		if n == nil {
			t.Errorf("%s: not found", tc.file)
			continue
		}
		if n.DaemonSet != tc.ds || !reflect.DeepEqual(n.LocalIPs, tc.ips) || n.ListenIP != tc.listen ||
			n.InterceptsVIP != tc.intercept || !reflect.DeepEqual(n.ForceTCP, tc.forceTCP) || n.Ready != tc.ready || n.Corefile == nil {
			t.Errorf("%s: got %+v", tc.file, n)
		}
	}
	if n := FindNodeLocal(loadFixture(t, "cni/many.yaml").daemonSets, nil, "10.96.0.10"); n != nil {
		t.Errorf("no NodeLocal DaemonSet, got %+v", n)
	}
}
