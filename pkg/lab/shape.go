package lab

import (
	"context"
	"fmt"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// podNetwork is the pod network a shape asks for; nil is the node image's
// default (labnet).
func podNetwork(name string, plan *images.Plan) (cluster.PodNetwork, error) {
	switch name {
	case scenario.DefaultPodNetwork:
		return nil, nil
	case "kube-router":
		return addons.KubeRouter(plan)
	case "calico":
		return addons.Calico(plan)
	case "weave":
		return addons.Weave(plan)
	}
	return nil, fmt.Errorf("podNetwork %q: the lab does not set it up; valid: %v", name, scenario.PodNetworks)
}

// addonImages are the addon images (images.Plan.Addons) a shape needs
// loaded into its nodes, the only ones built for it; never nil (nil would
// build them all).
func addonImages(shape scenario.Cluster) []string {
	out := []string{}
	if shape.PodNetwork == "kube-router" {
		out = append(out, "kube-router")
	}
	if shape.DNS.Server == "dnsmasq-coredns" {
		out = append(out, "dnsmasq")
	}
	return out
}

// setUpDNS makes the shape's cluster DNS out of kubeadm's CoreDNS, which
// already forwards to the lab upstream.
func setUpDNS(ctx context.Context, env addons.Env, dns scenario.DNS) error {
	switch dns.Server {
	case scenario.DefaultDNSServer:
		return nil
	case "dnsmasq-coredns":
		return addons.DnsmasqCoreDNS(ctx, env, dns.Replicas)
	case "kube-dns":
		return addons.KubeDNS(ctx, env, dns.Replicas)
	}
	return fmt.Errorf("dns.server %q: the lab does not set it up; valid: %v", dns.Server, scenario.DNSServers)
}

// setUpMitigation applies one cluster-level mitigation of the catalog.
// (delay-aaaa is not one: it is a mode of the agent the runner deploys with
// each cell.)
func setUpMitigation(ctx context.Context, env addons.Env, id string) error {
	switch id {
	case "nodelocaldns":
		return addons.NodeLocalDNS(ctx, env)
	case "autopath":
		return addons.Autopath(ctx, env)
	case "random-fully":
		return addons.RandomFully(ctx, env)
	case "arp-gc":
		return addons.ARPGC(ctx, env)
	}
	return fmt.Errorf("mitigation %q is not a cluster-level mitigation the lab sets up", id)
}

// addonSteps are the addon images loaded into a testbed's cluster for its shape.
func addonSteps(tb *Testbed) []*images.Step {
	var out []*images.Step
	for _, name := range addonImages(tb.Shape) {
		if s := tb.Images.AddonImage(name); s != nil {
			out = append(out, s)
		}
	}
	return out
}
