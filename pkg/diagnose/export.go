package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// labNetworks are the pod networks a lab scenario can ask for, by the CNI
// name FindCNIs gives (docs/scenario-reference.md, clusters[].podNetwork).
var labNetworks = map[string]string{"calico": "calico", "weave": "weave", "kube-router": "kube-router", "labnet": "default"}

// ExportScenario writes a lab scenario that reproduces the cluster's shape
// as far as the lab can (labrun diagnose --export-scenario), so the fixes
// can be compared on kind before production is touched. What the lab
// cannot reproduce is said in the file's comments. kind shares the host's
// kernel, so the kernel the nodes run is imitated by the race emulator,
// next to the bare host kernel.
func ExportScenario(id string, f Facts) []byte {
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }

	network := "default"
	for _, c := range f.CNIs {
		if n, ok := labNetworks[c.Name]; ok {
			network = n
			break
		}
	}
	if len(f.CNIs) > 0 && network == "default" && f.CNIs[0].Name != "labnet" {
		note("the cluster runs %s; the lab has no such network: its default one stands in", f.CNIs[0].Name)
	}
	proxy := f.KubeProxy.Mode
	switch proxy {
	case "iptables", "nftables", "ipvs":
	default:
		note("kube-proxy mode %q is not one the lab runs: iptables stands in", proxy)
		proxy = "iptables"
	}
	if f.Cilium != nil && f.Cilium.Replaces {
		note("Cilium replaces kube-proxy there; the lab cannot run Cilium (FACTS.md): kube-proxy iptables stands in")
	}
	server := "coredns"
	if f.DNS.Server == "kube-dns" {
		server = "kube-dns"
	}
	replicas := min(max(f.DNS.Ready, 1), 10)
	workers := 0
	for _, n := range f.Nodes {
		if !n.ControlPlane {
			workers++
		}
	}
	if workers > 10 {
		note("%d workers there; the lab's shape holds 10 at most", workers)
	}
	workers = min(workers, 10)
	if workers == 0 {
		workers = 2
	}

	mitigations := []string{"none", "single-request-reopen", "use-vc", "nodelocaldns"}
	if f.CoreDNS != nil && f.CoreDNS.Autopath() != nil {
		// The cluster's CoreDNS already walks the search path: every set
		// runs on top of autopath, as there.
		for i, m := range mitigations {
			if m == "none" {
				mitigations[i] = "autopath"
			} else {
				mitigations[i] = "autopath+" + m
			}
		}
		note("its CoreDNS runs autopath: every mitigation set includes it")
	}
	if f.NodeLocal != nil {
		note("it already runs NodeLocal DNSCache (%s): the sets without nodelocaldns show what pods that bypass it see", f.NodeLocal.DaemonSet)
	}

	profile, why := emulatorProfile(f.Nodes)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by labrun diagnose (id %s) from a cluster running Kubernetes %s.\n", id, orUnknown(f.Kubernetes))
	b.WriteString("# It reproduces that cluster's shape on kind, to compare the fixes there before production.\n")
	b.WriteString("# kind shares this host's kernel: the bare-kernel cells show the HOST's kernel, not the\n")
	fmt.Fprintf(&b, "# cluster's; the race emulator imitates the cluster's kernels (%s).\n", why)
	for _, n := range notes {
		fmt.Fprintf(&b, "# Not reproduced: %s.\n", n)
	}
	fmt.Fprintf(&b, `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata:
  name: diagnosed-%s
  description: the shape labrun diagnose found (%s, kube-proxy %s, %s x %d), its fixes side by side
clusters:
  - name: diagnosed
    nodes: {controlPlanes: 1, workers: %d}
    podNetwork: %s
    kubeProxy: %s
    dns: {server: %s, replicas: %d}
workload:
  resolvers: [glibc, musl]
  mitigations: [%s]
  names:
    - {name: kubernetes.default, kind: short}
    - {name: api.lab.example, kind: external}
  load: {podsPerNode: 2, concurrency: 4, rate: 50/s, duration: 10s}
chaos:
  - {}
  - raceEmulator: {profile: %q}
repeats: 1
`, id, network, proxy, server, replicas, workers, network, proxy, server, replicas, strings.Join(mitigations, ", "), profile)
	return []byte(b.String())
}

// emulatorProfile is the emulator profile of the nodes' worst predicted
// kernel, and why.
func emulatorProfile(nodes []Node) (string, string) {
	var every, diff []string
	for _, n := range nodes {
		switch n.Kernel.Drops {
		case DropsEvery:
			every = append(every, n.Kernel.Release)
		case DropsDifferentBackends:
			diff = append(diff, n.Kernel.Release)
		}
	}
	slices.Sort(every)
	slices.Sort(diff)
	switch {
	case len(every) > 0:
		return "pre-5.0", "profile pre-5.0: kernel " + strings.Join(slices.Compact(every), ", ") + " drops every clash"
	case len(diff) > 0:
		return "5.0-5.5", "profile 5.0-5.5: kernel " + strings.Join(slices.Compact(diff), ", ") + " drops clashes with different backends"
	}
	return "5.0-5.5", "its kernels are predicted to resolve clashes; profile 5.0-5.5 shows what an unfixed node would see"
}
