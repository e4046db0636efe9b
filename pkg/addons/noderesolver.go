package addons

import (
	"context"
	"fmt"
	"net"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
)

// nodeResolverNote marks the lab's rules on the nodes.
const nodeResolverNote = "labrun: pods' node resolver is the lab upstream"

// HermeticNodeResolver keeps pods with dnsPolicy Default (the
// dnspolicy-default mitigation) inside the lab. Such a pod gets the node's
// resolv.conf, whose nameserver is the Docker network's gateway, which the
// node DNATs to Docker's embedded DNS, which sends what it does not know to
// the host's resolvers: off the machine. On every node, queries that arrive
// from pods (not on eth0, the node's own link) for that nameserver are
// DNATed to the lab upstream's pod instead, first in nat PREROUTING. The
// node's own lookups (OUTPUT: kubelet, kube-proxy) still reach Docker's DNS
// for the nodes' names.
func HermeticNodeResolver(ctx context.Context, env Env) error {
	upstream, err := upstreamAddress(ctx, env.Cluster.Client)
	if err != nil {
		return fmt.Errorf("node resolver: %w", err)
	}
	return cluster.EachNode(env.Cluster.Nodes, func(n cluster.Node) error {
		conf, err := env.Cluster.Exec(ctx, n.Name, "cat", "/etc/resolv.conf")
		if err != nil {
			return err
		}
		for _, ns := range nameservers(string(conf)) {
			for _, rule := range nodeResolverRules(ns, upstream) {
				if _, err := env.Cluster.Exec(ctx, n.Name, append([]string{"iptables", "-t", "nat", "-C", "PREROUTING"}, rule...)...); err == nil {
					continue
				}
				if _, err := env.Cluster.Exec(ctx, n.Name, append([]string{"iptables", "-t", "nat", "-I", "PREROUTING", "1"}, rule...)...); err != nil {
					return fmt.Errorf("node resolver on %s: %w", n.Name, err)
				}
			}
		}
		return nil
	})
}

// upstreamAddress is the IPv4 address of a ready endpoint of the lab
// upstream's Service. It reads EndpointSlices: v1 Endpoints are deprecated
// since Kubernetes 1.33, and reading them earns a warning on every run.
func upstreamAddress(ctx context.Context, cs kubernetes.Interface) (string, error) {
	list, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + UpstreamName,
	})
	if err != nil {
		return "", fmt.Errorf("endpoints of %s: %w", UpstreamName, err)
	}
	for _, s := range list.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range s.Endpoints {
			// An unknown readiness (nil) counts as ready, as the API says.
			if (e.Conditions.Ready == nil || *e.Conditions.Ready) && len(e.Addresses) > 0 {
				return e.Addresses[0], nil
			}
		}
	}
	return "", fmt.Errorf("%s has no ready endpoint", UpstreamName)
}

// nameservers lists the IPv4 nameservers of a resolv.conf.
func nameservers(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && ip.To4() != nil {
				out = append(out, f[1])
			}
		}
	}
	return out
}

// nodeResolverRules are the nat PREROUTING rules sending pods' queries for
// nameserver to the lab upstream at upstream:53.
func nodeResolverRules(nameserver, upstream string) [][]string {
	var out [][]string
	for _, proto := range []string{"udp", "tcp"} {
		out = append(out, []string{"!", "-i", "eth0", "-d", nameserver + "/32", "-p", proto, "--dport", "53",
			"-m", "comment", "--comment", nodeResolverNote, "-j", "DNAT", "--to-destination", upstream + ":53"})
	}
	return out
}
