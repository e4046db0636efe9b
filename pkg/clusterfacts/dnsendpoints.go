package clusterfacts

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// DNSService is the cluster DNS Service (kube-system/kube-dns, whatever
// server is behind it) and its endpoints.
type DNSService struct {
	VIP       string        `json:"vip"`
	Endpoints []DNSEndpoint `json:"endpoints"`
	// Ready counts the ready endpoints: the DNAT race between different
	// backends needs at least two.
	Ready int `json:"ready"`
	// Server is which DNS server runs behind it: coredns, kube-dns (dnsmasq),
	// or "" when neither Deployment was readable.
	Server string `json:"server,omitempty"`
}

// DNSEndpoint is one address behind the VIP.
type DNSEndpoint struct {
	IP    string `json:"ip"`
	Node  string `json:"node,omitempty"`
	Pod   string `json:"pod,omitempty"`
	Ready bool   `json:"ready"`
}

// DNSEndpoints reads the Service's ClusterIP and the addresses of its
// EndpointSlices (every slice labelled kubernetes.io/service-name=kube-dns),
// each address once, in address order. A nil Ready condition counts as ready,
// as the EndpointSlice API says.
func DNSEndpoints(svc *corev1.Service, slices_ []discoveryv1.EndpointSlice) DNSService {
	var d DNSService
	if svc != nil {
		d.VIP = svc.Spec.ClusterIP
	}
	seen := map[string]bool{}
	for _, s := range slices_ {
		if s.Labels[discoveryv1.LabelServiceName] != "kube-dns" {
			continue
		}
		for _, e := range s.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			for _, ip := range e.Addresses {
				if seen[ip] {
					continue
				}
				seen[ip] = true
				ep := DNSEndpoint{IP: ip, Ready: ready}
				if e.NodeName != nil {
					ep.Node = *e.NodeName
				}
				if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
					ep.Pod = e.TargetRef.Name
				}
				d.Endpoints = append(d.Endpoints, ep)
				if ready {
					d.Ready++
				}
			}
		}
	}
	slices.SortFunc(d.Endpoints, func(a, b DNSEndpoint) int { return strings.Compare(a.IP, b.IP) })
	return d
}
