package addons

import (
	"slices"
	"strings"
	"testing"
)

func TestNameservers(t *testing.T) {
	for _, tt := range []struct{ conf, want string }{
		{"nameserver 172.18.0.1\noptions ndots:0\n", "172.18.0.1"},
		{"# generated\nsearch example\nnameserver 172.18.0.1\nnameserver fc00::1\nnameserver 10.0.0.2\n", "172.18.0.1,10.0.0.2"},
		{"options ndots:0\n", ""},
	} {
		if got := strings.Join(nameservers(tt.conf), ","); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.conf, got, tt.want)
		}
	}
}

// The rules catch pods' queries only (not the node's own, which arrive on
// no interface, nor the Docker network's, on eth0), for both transports.
func TestNodeResolverRules(t *testing.T) {
	rules := nodeResolverRules("172.18.0.1", "10.244.1.7")
	if len(rules) != 2 {
		t.Fatalf("%d rules, want udp and tcp", len(rules))
	}
	for i, proto := range []string{"udp", "tcp"} {
		r := strings.Join(rules[i], " ")
		for _, want := range []string{"! -i eth0", "-d 172.18.0.1/32", "-p " + proto + " --dport 53", "-j DNAT --to-destination 10.244.1.7:53", nodeResolverNote} {
			if !strings.Contains(r, want) {
				t.Errorf("rule %q lacks %q", r, want)
			}
		}
		if slices.Contains(rules[i], "PREROUTING") {
			t.Errorf("rule %q names its chain: the caller does", r)
		}
	}
}
