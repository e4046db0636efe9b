package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestWriteCNIConfig(t *testing.T) {
	dir := t.TempDir()
	if err := writeCNIConfig(dir, "10.244.1.0/24"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, cniFile))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "ptp" || conf.Plugins[0].IPAM.Type != "host-local" ||
		conf.Plugins[0].IPAM.Ranges[0][0]["subnet"] != "10.244.1.0/24" || conf.Plugins[1].Type != "portmap" {
		t.Errorf("unexpected CNI configuration:\n%s", b)
	}
	// Rewriting the same configuration leaves the file alone (no churn for kubelet).
	st1, _ := os.Stat(filepath.Join(dir, cniFile))
	if err := writeCNIConfig(dir, "10.244.1.0/24"); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(filepath.Join(dir, cniFile)); !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("an unchanged configuration was rewritten")
	}
}

func TestRouteFor(t *testing.T) {
	node := func(cidr string, addrs ...corev1.NodeAddress) corev1.Node {
		return corev1.Node{Spec: corev1.NodeSpec{PodCIDR: cidr}, Status: corev1.NodeStatus{Addresses: addrs}}
	}
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	cases := []struct {
		name    string
		node    corev1.Node
		dst, gw string // "" gw: an error is expected
	}{
		{"ipv4 internal address", node("10.244.2.0/24", internal("172.18.0.3")), "10.244.2.0/24", "172.18.0.3"},
		{"ipv6 address skipped", node("10.244.2.0/24", internal("fc00::3"), internal("172.18.0.4")), "10.244.2.0/24", "172.18.0.4"},
		{"no internal address yet", node("10.244.2.0/24", corev1.NodeAddress{Type: corev1.NodeHostName, Address: "w"}), "", ""},
		{"bad pod CIDR", node("10.244.2.0", internal("172.18.0.3")), "", ""},
	}
	for _, c := range cases {
		r, err := routeFor(c.node)
		if c.gw == "" {
			if err == nil {
				t.Errorf("%s: no error, route %v", c.name, r)
			}
			continue
		}
		if err != nil || r.Dst.String() != c.dst || r.Gw.String() != c.gw {
			t.Errorf("%s: route %v, %v; want %s via %s", c.name, r, err, c.dst, c.gw)
		}
	}
}

// TestIntegrationMasquerade runs labnet's masquerade set-up in a network
// namespace of its own (root): the plain rule, then the random-fully one
// replacing it (the random-fully mitigation restarts labnet with
// MASQUERADE_RANDOM_FULLY=true), then back; one rule at every step.
func TestIntegrationMasquerade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ns := fmt.Sprintf("labrun-labnet-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	old := iptablesCmd
	iptablesCmd = []string{"ip", "netns", "exec", ns, "iptables"}
	t.Cleanup(func() { iptablesCmd = old })

	for _, step := range []struct {
		randomFully bool
		want        string
	}{{false, "-j MASQUERADE"}, {true, "-j MASQUERADE --random-fully"}, {true, "-j MASQUERADE --random-fully"}, {false, "-j MASQUERADE"}} {
		if err := masquerade("10.244.0.0/16", step.randomFully); err != nil {
			t.Fatal(err)
		}
		out, err := iptables("-t", "nat", "-S", "POSTROUTING").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, out)
		}
		var rules []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "MASQUERADE") {
				rules = append(rules, l)
			}
		}
		if len(rules) != 1 || !strings.HasSuffix(rules[0], step.want) {
			t.Errorf("random-fully=%v: masquerade rules %q, want one ending %q", step.randomFully, rules, step.want)
		}
	}
}
