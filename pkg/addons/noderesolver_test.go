package addons

import (
	"context"
	"slices"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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

// The upstream's address comes from its EndpointSlices (reading v1
// Endpoints earns a deprecation warning): a ready IPv4 endpoint, not an
// unready one, nor another Service's, nor an IPv6 slice.
func TestUpstreamAddress(t *testing.T) {
	ctx := context.Background()
	yes, no := true, false
	slice := func(name, service string, family discoveryv1.AddressType, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
			AddressType: family,
			Endpoints:   eps,
		}
	}
	ep := func(ip string, ready *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	cs := fake.NewClientset(
		slice("kube-dns-a", "kube-dns", discoveryv1.AddressTypeIPv4, ep("10.244.0.2", &yes)),
		slice("labdns-6", UpstreamName, discoveryv1.AddressTypeIPv6, ep("fd00::7", &yes)),
		slice("labdns-4", UpstreamName, discoveryv1.AddressTypeIPv4, ep("10.244.1.8", &no), ep("10.244.1.7", &yes)),
	)
	if got, err := upstreamAddress(ctx, cs); err != nil || got != "10.244.1.7" {
		t.Errorf("upstreamAddress = %q, %v; want 10.244.1.7", got, err)
	}

	cs = fake.NewClientset(slice("labdns-4", UpstreamName, discoveryv1.AddressTypeIPv4, ep("10.244.1.8", &no)))
	if got, err := upstreamAddress(ctx, cs); err == nil || !strings.Contains(err.Error(), "no ready endpoint") {
		t.Errorf("upstreamAddress with no ready endpoint = %q, %v; want an error", got, err)
	}
}
