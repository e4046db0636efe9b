package diagnose

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func dnsObjects(t *testing.T, file string) (*corev1.Service, []discoveryv1.EndpointSlice) {
	t.Helper()
	var svc *corev1.Service
	var sl []discoveryv1.EndpointSlice
	for _, o := range loadObjects(t, file) {
		switch v := o.(type) {
		case *corev1.Service:
			svc = v
		case *discoveryv1.EndpointSlice:
			sl = append(sl, *v)
		}
	}
	return svc, sl
}

func TestDNSEndpoints(t *testing.T) {
	for _, tc := range []struct {
		file  string
		vip   string
		ready int
		eps   []DNSEndpoint
	}{
		{"dns/two-ready.yaml", "10.96.0.10", 2, []DNSEndpoint{
			{IP: "10.244.0.4", Node: "labrun-control-plane", Pod: "coredns-7db6d8ff4d-fghij", Ready: true},
			{IP: "10.244.1.3", Node: "labrun-worker", Pod: "coredns-7db6d8ff4d-abcde", Ready: true},
		}},
		{"dns/one-ready.yaml", "172.20.0.10", 1, []DNSEndpoint{
			{IP: "192.168.12.40", Node: "ip-192-168-12-7.ec2.internal", Ready: true},
			{IP: "192.168.30.2", Node: "ip-192-168-30-100.ec2.internal", Ready: false},
		}},
	} {
		svc, sl := dnsObjects(t, tc.file)
		d := DNSEndpoints(svc, sl)
		if d.VIP != tc.vip || d.Ready != tc.ready || !reflect.DeepEqual(d.Endpoints, tc.eps) {
			t.Errorf("%s: got %+v", tc.file, d)
		}
	}
	if d := DNSEndpoints(nil, nil); d.VIP != "" || d.Ready != 0 {
		t.Errorf("nothing readable: got %+v", d)
	}
}
