package diagnose

import (
	"reflect"
	"strings"
	"testing"
)

func nodes(releases ...string) []Node {
	var out []Node
	for i, r := range releases {
		out = append(out, Node{Name: string(rune('a' + i)), Ready: true, Kernel: PredictKernel(r)})
	}
	return out
}

func dns(ready int) DNSService {
	d := DNSService{VIP: "10.96.0.10", Server: "coredns", Ready: ready}
	for i := 0; i < ready; i++ {
		d.Endpoints = append(d.Endpoints, DNSEndpoint{IP: "10.244.0." + string(rune('1'+i)), Ready: true})
	}
	return d
}

func TestPredict(t *testing.T) {
	iptables := KubeProxy{Mode: "iptables", Source: "test"}
	nlIntercept := &NodeLocal{DaemonSet: "kube-system/node-local-dns", LocalIPs: []string{"169.254.20.10", "10.96.0.10"}, ListenIP: "169.254.20.10", InterceptsVIP: true}
	nlLinkLocal := &NodeLocal{DaemonSet: "kube-system/nodelocaldns", LocalIPs: []string{"169.254.25.10"}, ListenIP: "169.254.25.10"}
	for _, tc := range []struct {
		name     string
		f        Facts
		verdict  string
		affected []string
		reason   string // a reason that must be given
	}{
		{"old kernels, 2 backends", Facts{KubeProxy: iptables, DNS: dns(2), Nodes: nodes("4.14.1", "5.4.0", "5.10.1")},
			PredictAffected, []string{"a", "b"}, "different backends"},
		{"5.4 with one backend", Facts{KubeProxy: iptables, DNS: dns(1), Nodes: nodes("5.4.0")},
			PredictNotAffected, nil, "1 ready DNS endpoint"},
		{"4.14 with one backend still drops", Facts{KubeProxy: iptables, DNS: dns(1), Nodes: nodes("4.14.0")},
			PredictAffected, []string{"a"}, "every clash"},
		{"modern kernels", Facts{KubeProxy: iptables, DNS: dns(2), Nodes: nodes("6.1.0", "6.18.0")},
			PredictNotAffected, nil, "resolved: clashres grows"},
		{"unparsable kernel", Facts{KubeProxy: iptables, DNS: dns(2), Nodes: nodes("6.1.0", "weird")},
			PredictUnknown, nil, "unknown: the release did not parse"},
		{"no nodes readable", Facts{KubeProxy: iptables, DNS: dns(2)},
			PredictUnknown, nil, "no node kernels readable"},
		{"proxy mode unknown", Facts{KubeProxy: KubeProxy{Source: "none"}, DNS: dns(2), Nodes: nodes("5.4.0")},
			PredictUnknown, []string{"a"}, "whether the VIP is DNATed by netfilter is unknown"},
		{"nodelocal binds the VIP", Facts{KubeProxy: iptables, DNS: dns(2), Nodes: nodes("4.19.0"), NodeLocal: nlIntercept},
			PredictNotAffected, nil, "binds the VIP"},
		{"nodelocal binds the VIP but ipvs", Facts{KubeProxy: KubeProxy{Mode: "ipvs"}, DNS: dns(2), Nodes: nodes("4.19.0"), NodeLocal: nlIntercept},
			PredictAffected, []string{"a"}, "not shown to use it"},
		{"nodelocal as clusterDNS", Facts{KubeProxy: KubeProxy{Mode: "ipvs"}, DNS: dns(2), Nodes: nodes("4.19.0"), NodeLocal: nlLinkLocal,
			Kubelet: &KubeletDNS{ClusterDNS: []string{"169.254.25.10"}, Source: "kubelet-config"}},
			PredictNotAffected, nil, "is the kubelet's clusterDNS"},
		{"cilium socket LB", Facts{Cilium: CiliumConfig(nil), DNS: dns(2), Nodes: nodes("4.19.0")},
			PredictUnknown, []string{"a"}, "mode unknown"},
		{"cilium replaces", Facts{Cilium: &Cilium{KubeProxyReplacement: "true", Replaces: true, SocketLB: true, Note: "socket"}, DNS: dns(2), Nodes: nodes("4.19.0")},
			PredictNotAffected, nil, "Cilium replaces kube-proxy"},
	} {
		p := Predict(tc.f)
		if p.Verdict != tc.verdict || !reflect.DeepEqual(p.AffectedNodes, tc.affected) {
			t.Errorf("%s: verdict %q affected %v, want %q %v; reasons:\n%s", tc.name, p.Verdict, p.AffectedNodes, tc.verdict, tc.affected, strings.Join(p.Reasons, "\n"))
		}
		if !strings.Contains(strings.Join(p.Reasons, "\n"), tc.reason) {
			t.Errorf("%s: no reason says %q:\n%s", tc.name, tc.reason, strings.Join(p.Reasons, "\n"))
		}
	}
}

func TestBackfires(t *testing.T) {
	auto := readCorefile(t, "autopath.Corefile")
	f := Facts{CoreDNS: &auto, DNS: DNSService{Server: "kube-dns"},
		NodeLocal: &NodeLocal{ForceTCP: []string{"10.233.0.3"}}}
	got := strings.Join(Predict(f).Backfires, "\n")
	for _, want := range []string{"watches every pod", "force_tcp (to 10.233.0.3) toward kube-dns (dnsmasq)"} {
		if !strings.Contains(got, want) {
			t.Errorf("backfires lack %q:\n%s", want, got)
		}
	}
	plain := readCorefile(t, "kubeadm.Corefile")
	f = Facts{CoreDNS: &plain, DNS: DNSService{Server: "coredns"}, NodeLocal: &NodeLocal{ForceTCP: []string{"10.96.0.20"}}}
	if b := Predict(f).Backfires; len(b) != 0 {
		t.Errorf("no autopath, force_tcp toward CoreDNS: want no backfire, got %q", b)
	}
}
