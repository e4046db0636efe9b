// Package mitigation is the catalog of DNS mitigations of PHENOMENON.md as
// data: what each one changes, where, which resolver back ends it applies to,
// which of them ignore it, and what it is expected to do under the conntrack
// race. Sets of mitigations compose with "+".
//
// The catalog lives apart from the pod-spec code of pkg/workload so that
// pkg/scenario can validate and expand matrices without importing Kubernetes
// types.
package mitigation

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Where says which part of the lab a mitigation changes.
type Where string

const (
	Nowhere      Where = "none"          // the baseline
	PodDNSConfig Where = "pod-dnsconfig" // pod spec dnsConfig.options
	PodDNSPolicy Where = "pod-dnspolicy" // pod spec dnsPolicy
	PodEnv       Where = "pod-env"       // an environment variable of the probe
	NameList     Where = "name-list"     // the names the probe looks up
	DNSServer    Where = "dns-server"    // the cluster DNS server's configuration
	ClusterAddon Where = "cluster-addon" // an addon installed in the cluster
	Node         Where = "node"          // the node's netfilter, tc or sysctls
	// NodeAgent is the lab agent on each node, deployed with each cell (as
	// the race emulator is), so it needs no cluster of its own.
	NodeAgent Where = "node-agent"
)

// ClusterLevel reports whether a mitigation changes the cluster rather than the
// probe pod: cells with different cluster-level mitigations need different
// clusters (or a cluster reconfigured between them).
func (w Where) ClusterLevel() bool {
	return w == DNSServer || w == ClusterAddon || w == Node
}

// PodLevel reports whether a mitigation changes only the probe pod (or the
// names it looks up).
func (w Where) PodLevel() bool {
	return w == PodDNSConfig || w == PodDNSPolicy || w == PodEnv || w == NameList
}

// Resolver back ends, as the probe names them (cmd/probe --backend).
const (
	Glibc      = "glibc"       // getaddrinfo through cgo, Debian image
	Musl       = "musl"        // getaddrinfo compiled against musl
	GRPCAres   = "grpc-ares"   // gRPC C-core, GRPC_DNS_RESOLVER=ares (its default)
	GRPCNative = "grpc-native" // gRPC C-core, GRPC_DNS_RESOLVER=native (getaddrinfo)
	GoResolver = "go"          // Go's pure resolver, a control
	Raw        = "raw"         // miekg/dns with an explicit socket policy
	// JVM is InetAddress.getAllByName in Java 17 (glibc's getaddrinfo
	// underneath) with the JVM's own address cache at its defaults
	// (networkaddress.cache.ttl 30 s, negative.ttl 10 s); JVMNoCache is the
	// same with both TTLs 0, so every lookup reaches getaddrinfo.
	JVM        = "jvm"
	JVMNoCache = "jvm-nocache"
	// Dotnet is .NET's resolver (getaddrinfo on Linux): named so that a
	// scenario can ask for it and the plan says why it is not run.
	Dotnet = "dotnet"
)

// Resolvers lists every back end in report order.
var Resolvers = []string{Glibc, Musl, GRPCAres, GRPCNative, GoResolver, Raw, JVM, JVMNoCache, Dotnet}

// unavailable are the back ends the lab cannot run on these machines, each
// with why: their cells are planned and reported as not run.
var unavailable = map[string]string{
	Dotnet: "neither Debian nor the registries these machines reach serve a .NET runtime",
}

// Unavailable says why back end r cannot run here, or "" when it can.
func Unavailable(r string) string { return unavailable[r] }

// ProbeFlags are cmd/probe's flags that select back end r: the jvm variants
// are one probe back end (-backend jvm) with its address cache at the JVM's
// defaults or off (-jvm-cache).
func ProbeFlags(r string) []string {
	switch r {
	case JVM:
		return []string{"--backend=jvm", "--jvm-cache=defaults"}
	case JVMNoCache:
		return []string{"--backend=jvm", "--jvm-cache=nocache"}
	}
	return []string{"--backend=" + r}
}

// Mitigation is one catalog entry.
type Mitigation struct {
	ID      string
	Changes string // what changes, in the words of a pod spec or a config file
	Where   Where
	// AppliesTo lists the back ends the mitigation can apply to; empty means all.
	// A cell pairing it with another back end is not run, for NotApplicable.
	AppliesTo     []string
	NotApplicable string
	// IgnoredBy lists back ends that accept the change but ignore it. Such cells
	// are run: showing that nothing changes is a finding.
	IgnoredBy []string
	Expected  string // the expected effect under the race
	// Implemented is false for entries whose cluster or node side the lab cannot
	// set up yet; plan marks their cells "not run".
	Implemented bool
	// Excludes lists entries it cannot be combined with, each with why.
	Excludes map[string]string
	// Option is the resolv.conf option set in dnsConfig.options (PodDNSConfig).
	Option      string
	OptionValue string
	// Undone: the lab undoes its cluster-level set-up exactly
	// (addons.SetUpUndoable), so one cluster serves the shapes that differ
	// only by such mitigations, in turn (scenario.Families).
	Undone bool
}

// Ignores reports whether back end r is known to ignore m.
func (m Mitigation) Ignores(r string) bool { return slices.Contains(m.IgnoredBy, r) }

// AppliesToResolver reports whether m can apply to back end r, and if not, why.
func (m Mitigation) AppliesToResolver(r string) (bool, string) {
	if len(m.AppliesTo) == 0 || slices.Contains(m.AppliesTo, r) {
		return true, ""
	}
	return false, m.NotApplicable
}

// resolvConfIgnorers are the back ends that do not read resolv.conf's options
// line the way glibc does: musl ignores single-request(-reopen) and use-vc,
// c-ares has its own resolver, raw sets its socket policy explicitly. The jvm
// back ends are not among them: the JVM resolves through glibc's getaddrinfo.
var resolvConfIgnorers = []string{Musl, GRPCAres, Raw}

var catalog = []Mitigation{
	{
		ID: "none", Changes: "nothing (the baseline)", Where: Nowhere, Implemented: true,
		Expected: "glibc: delays of 5 s multiples; insert_failed (or the emulator's drops) grows",
		Excludes: map[string]string{},
	},
	{
		ID: "single-request-reopen", Changes: "options single-request-reopen", Where: PodDNSConfig,
		Option: "single-request-reopen", IgnoredBy: resolvConfIgnorers, Implemented: true,
		Expected: "glibc: A and AAAA from different sockets, delays gone; musl, c-ares: no effect",
	},
	{
		ID: "single-request", Changes: "options single-request", Where: PodDNSConfig,
		Option: "single-request", IgnoredBy: resolvConfIgnorers, Implemented: true,
		Expected: "glibc: A then AAAA, one at a time: delays gone, lookups slightly slower",
	},
	{
		ID: "use-vc", Changes: "options use-vc (DNS over TCP)", Where: PodDNSConfig,
		Option: "use-vc", IgnoredBy: resolvConfIgnorers, Implemented: true,
		Expected: "glibc: the TCP handshake creates the conntrack entry first: delays gone, each query slower",
	},
	{
		ID: "ndots-N", Changes: "options ndots:N", Where: PodDNSConfig, Option: "ndots",
		IgnoredBy: []string{Raw}, Implemented: true,
		Expected: "fewer search-list expansions for outside names: fewer queries, fewer chances to hit the race",
	},
	{
		ID: "fqdn", Changes: "names looked up with a trailing dot", Where: NameList, Implemented: true,
		Expected: "no search-list expansion at all: one name, two queries per lookup",
	},
	{
		ID: "dnspolicy-default", Changes: "dnsPolicy: Default", Where: PodDNSPolicy, Implemented: true,
		Expected: "the node's resolver, no cluster DNS VIP: one seed saw ~5 s become ~2 s, not gone; in-cluster names stop resolving",
		Excludes: map[string]string{
			"nodelocaldns": "dnsPolicy Default bypasses the cluster DNS and its node-local cache",
			"autopath":     "dnsPolicy Default bypasses the cluster DNS, so its autopath never runs",
		},
	},
	{
		ID: "grpc-native", Changes: "env GRPC_DNS_RESOLVER=native", Where: PodEnv, Implemented: true,
		AppliesTo:     []string{GRPCAres},
		NotApplicable: "only gRPC C-core with its c-ares resolver (grpc-ares) reads GRPC_DNS_RESOLVER; the JVM and the C resolvers never do",
		Expected:      "gRPC uses getaddrinfo, so resolv.conf options apply",
	},
	{
		ID: "autopath", Implemented: true, Undone: true, Changes: "CoreDNS autopath @kubernetes with pods verified", Where: DNSServer,
		Expected: "the server walks the search path: one round trip per lookup instead of many",
	},
	{
		ID: "nodelocaldns", Implemented: true, Changes: "NodeLocal DNSCache: 169.254.20.10 and the DNS VIP bound on every node with NOTRACK; pods unchanged", Where: ClusterAddon,
		Expected: "no DNAT and no conntrack between pod and cache: the race is avoided for every resolver",
	},
	{
		ID: "delay-aaaa", Implemented: true, Changes: "AAAA queries toward port 53 held a few ms on the node", Where: NodeAgent,
		Expected: "the A query's entry is confirmed before the AAAA arrives: the race is avoided",
	},
	{
		ID: "random-fully", Implemented: true, Undone: true, Changes: "--random-fully on the masquerade rules", Where: Node,
		Expected: "fixes only the SNAT port race: no effect on the DNAT race",
	},
	{
		ID: "arp-gc", Implemented: true, Undone: true, Changes: "net.ipv4.neigh.default.gc_thresh1/2/3 raised", Where: Node,
		Expected: "only cures ARP table overflow, a look-alike cause: no effect",
	},
}

// Catalog returns a copy of every entry, in catalog order. ndots-N stands for
// the family ndots-0 … ndots-15.
func Catalog() []Mitigation {
	out := make([]Mitigation, len(catalog))
	copy(out, catalog)
	return out
}

// IDs returns the catalog's ids in order, for "valid: …" messages.
func IDs() []string {
	ids := make([]string, len(catalog))
	for i, m := range catalog {
		ids[i] = m.ID
	}
	return ids
}

// UndoneIDs are the entries the lab undoes exactly (Undone), in catalog
// order: the shapes that differ only by them share a cluster.
func UndoneIDs() []string {
	var out []string
	for _, m := range catalog {
		if m.Undone {
			out = append(out, m.ID)
		}
	}
	return out
}

// MaxNdots is the largest ndots glibc accepts (it clamps larger values).
const MaxNdots = 15

// Lookup returns the entry for id. ndots-N returns the ndots-N entry with its
// ID and OptionValue filled in for that N.
func Lookup(id string) (Mitigation, error) {
	if n, ok := strings.CutPrefix(id, "ndots-"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 || v > MaxNdots || strconv.Itoa(v) != n {
			return Mitigation{}, fmt.Errorf("%q: ndots-N needs N from 0 to %d", id, MaxNdots)
		}
		m := entry("ndots-N")
		m.ID, m.OptionValue, m.Changes = id, n, "options ndots:"+n
		return m, nil
	}
	for _, m := range catalog {
		if m.ID == id {
			return m, nil
		}
	}
	return Mitigation{}, fmt.Errorf("unknown mitigation %q", id)
}

func entry(id string) Mitigation {
	for _, m := range catalog {
		if m.ID == id {
			return m
		}
	}
	panic("mitigation catalog lacks " + id)
}
