// Package addons installs what the lab adds to a fresh cluster: the lab
// upstream DNS server and gRPC server that keep it hermetic, and what a
// cluster shape asks for: its pod network (kube-router, Calico, Weave Net),
// its DNS server (dnsmasq in front of CoreDNS, kube-dns) and the
// cluster-level mitigations (nodelocaldns, autopath, random-fully, arp-gc).
package addons

import (
	"context"
	"fmt"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// UpstreamName names the lab upstream's Deployment and Service.
	UpstreamName = "labdns"
	// Zone is the synthetic outside zone the lab upstream serves.
	Zone      = "lab.example."
	namespace = "kube-system"
	timeout   = 2 * time.Minute
)

func labUpstream(image, a string) labService {
	return labService{
		name:  UpstreamName,
		image: image,
		args:  []string{"--listen", ":53", "--zone", Zone, "--a", a},
		ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
		},
	}
}

var forwardLine = regexp.MustCompile(`forward \. [^\s{]+`)

// ForwardCorefile points a Corefile's forward plugin at upstream.
func ForwardCorefile(corefile, upstream string) (string, error) {
	if !forwardLine.MatchString(corefile) {
		return "", fmt.Errorf("coredns Corefile has no `forward .` line to point at the lab upstream")
	}
	return forwardLine.ReplaceAllString(corefile, "forward . "+upstream), nil
}

// forwardCoreDNS points CoreDNS's forwarder at upstream and restarts it.
func forwardCoreDNS(ctx context.Context, cs kubernetes.Interface, upstream string) error {
	return rewriteCoreDNS(ctx, cs, func(corefile string) (string, error) { return ForwardCorefile(corefile, upstream) })
}
