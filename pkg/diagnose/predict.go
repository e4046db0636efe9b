package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// Verdicts of a prediction.
const (
	PredictAffected    = "predicted affected"
	PredictNotAffected = "predicted not affected"
	PredictUnknown     = "unknown"
)

// Prediction is what the facts predict before anything is measured. It is
// never "known": the kernel table is by version and distributions backport.
type Prediction struct {
	Verdict string `json:"verdict"`
	// Reasons are the facts that led to the verdict, in order.
	Reasons []string `json:"reasons"`
	// AffectedNodes are the nodes whose kernel is predicted to drop.
	AffectedNodes []string `json:"affectedNodes,omitempty"`
	// Backfires are known costs of what the cluster already runs.
	Backfires []string `json:"backfires,omitempty"`
}

// Predict applies PHENOMENON.md's mechanism to the facts: the race needs a
// netfilter DNAT of the DNS VIP (kube-proxy iptables, ipvs or nftables; not
// Cilium's socket or eBPF translation), pods that reach the VIP rather than
// an untracked NodeLocal DNSCache, and a kernel that drops clashes — every
// clash before 4.19, clashes with different backends (so ≥ 2 endpoints)
// before 5.6.
func Predict(f Facts) Prediction {
	p := Prediction{Backfires: backfires(f)}
	add := func(format string, a ...any) { p.Reasons = append(p.Reasons, fmt.Sprintf(format, a...)) }

	if f.Cilium != nil && f.Cilium.Replaces {
		add("Cilium replaces kube-proxy (%s): %s", f.Cilium.KubeProxyReplacement, f.Cilium.Note)
		p.Verdict = PredictNotAffected
		return p
	}
	switch f.KubeProxy.Mode {
	case "iptables", "ipvs", "nftables":
		add("kube-proxy %s (%s): the DNS VIP is DNATed by netfilter, through conntrack", f.KubeProxy.Mode, f.KubeProxy.Source)
	case "":
		add("kube-proxy's mode unknown (%s)", f.KubeProxy.Source)
	default:
		add("kube-proxy mode %s: not one the lab knows", f.KubeProxy.Mode)
	}
	if nl := f.NodeLocal; nl != nil {
		switch {
		case nl.InterceptsVIP && (f.KubeProxy.Mode == "iptables" || f.KubeProxy.Mode == "nftables"):
			add("NodeLocal DNSCache (%s) binds the VIP %s on every node: pods' queries reach it untracked, without DNAT", nl.DaemonSet, f.DNS.VIP)
			p.Verdict = PredictNotAffected
			return p
		case f.Kubelet != nil && slices.Contains(f.Kubelet.ClusterDNS, nl.ListenIP):
			add("NodeLocal DNSCache (%s) on %s is the kubelet's clusterDNS (%s): pods' queries reach it untracked", nl.DaemonSet, nl.ListenIP, f.Kubelet.Source)
			p.Verdict = PredictNotAffected
			return p
		default:
			add("NodeLocal DNSCache (%s) listens on %s but pods are not shown to use it (it does not bind the VIP under kube-proxy %s, and the kubelet's clusterDNS is not known to point at it)",
				nl.DaemonSet, strings.Join(nl.LocalIPs, ","), orUnknown(f.KubeProxy.Mode))
		}
	}
	switch ready := f.DNS.Ready; {
	case len(f.DNS.Endpoints) == 0 && f.DNS.VIP == "":
		add("cluster DNS endpoints unknown")
	case ready >= 2:
		add("%d ready DNS endpoints behind %s: two queries of one socket can get different backends", ready, f.DNS.VIP)
	default:
		add("%d ready DNS endpoint(s) behind %s: only clashes with the same backend, which kernels ≥ 4.19 resolve", ready, f.DNS.VIP)
	}
	if len(f.Nodes) == 0 {
		add("no node kernels readable")
		p.Verdict = PredictUnknown
		return p
	}
	var unknown []string
	byDrops := map[string][]string{}
	for _, n := range f.Nodes {
		k := n.Kernel
		byDrops[k.Drops] = append(byDrops[k.Drops], n.Name+" ("+k.Release+")")
		switch {
		case !k.Known:
			unknown = append(unknown, n.Name)
		case k.Drops == DropsEvery, k.Drops == DropsDifferentBackends && f.DNS.Ready >= 2:
			p.AffectedNodes = append(p.AffectedNodes, n.Name)
		}
	}
	for _, d := range []string{DropsEvery, DropsDifferentBackends, DropsNone, DropsUnknown} {
		if nodes := byDrops[d]; len(nodes) > 0 {
			add("kernel on %d node(s) (%s): %s", len(nodes), strings.Join(nodes, ", "), d)
		}
	}
	dnatKnown := f.KubeProxy.Mode != ""
	switch {
	case len(p.AffectedNodes) > 0 && dnatKnown:
		p.Verdict = PredictAffected
	case len(p.AffectedNodes) > 0:
		p.Verdict = PredictUnknown
		add("the kernels would drop, but whether the VIP is DNATed by netfilter is unknown")
	case len(unknown) > 0:
		p.Verdict = PredictUnknown
	default:
		p.Verdict = PredictNotAffected
		add("the race still happens on these kernels but is resolved: clashres grows, insert_failed does not (distribution backports aside)")
	}
	return p
}

// backfires are known costs of mitigations the cluster already runs.
func backfires(f Facts) []string {
	var out []string
	if f.CoreDNS != nil {
		if s := f.CoreDNS.Autopath(); s != nil {
			out = append(out, fmt.Sprintf("CoreDNS autopath in %s (pods %s): autopath needs pods verified, so every CoreDNS replica watches every pod: memory grows with the cluster's pod count",
				strings.Join(s.Zones, " "), orUnknown(s.PodsMode)))
			if s.PodsMode != "verified" {
				out = append(out, "CoreDNS autopath without `pods verified`: autopath @kubernetes cannot work, the search path is walked by the client as before")
			}
		}
	}
	if nl := f.NodeLocal; nl != nil && len(nl.ForceTCP) > 0 && f.DNS.Server == "kube-dns" {
		out = append(out, fmt.Sprintf("NodeLocal DNSCache forwards with force_tcp (to %s) toward kube-dns (dnsmasq): dnsmasq serves TCP in forked children, a few at a time; under load the cache's TCP queries queue and time out",
			strings.Join(nl.ForceTCP, ", ")))
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
