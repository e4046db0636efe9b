// Package egress keeps the lab hermetic: while a lab cluster exists, the host
// refuses to forward anything from the Docker network of kind's nodes to any
// other interface, so no packet of a node, a pod or Docker's DNS proxy
// inside a node (CoreDNS's first upstream) leaves the machine.
//
// Node components reach for the Kubernetes service VIP before kube-proxy has
// programmed it, and a node's default route leads to the host: without the
// guard Docker masquerades those connections out of the machine (a TLS
// handshake with whatever answers 10.96.0.1:443 outside was seen). With it
// they are refused at once (a TCP reset, an ICMP error for the rest) and the
// components retry until kube-proxy's rules catch the VIP on the node.
//
// The rules go where Docker documents them, its DOCKER-USER chain (FORWARD
// when Docker manages no iptables), in the iptables flavour that holds
// Docker's rules; with no iptables at all, an nftables table of their own.
// Every rule carries the comment labrun-egress-guard, so Remove finds them
// with no state file.
package egress

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/iptables"
)

const (
	// Network is the Docker network kind puts every node on.
	Network = "kind"
	// Comment marks every rule of the guard.
	Comment = "labrun-egress-guard"
	// nftTable is the guard's own table where there is no iptables.
	nftTable = "labrun_egress"
)

// Guard is the guard in place: what env.json records.
type Guard struct {
	Network string   `json:"network"`
	Bridge  string   `json:"bridge"`  // the network's bridge interface
	Subnets []string `json:"subnets"` // the network's, for reading captures
	Rules   string   `json:"rules"`   // where the rules are, e.g. "iptables-nft filter DOCKER-USER"
}

func (g Guard) String() string {
	return fmt.Sprintf("%s: forwarding from %s (Docker network %s, %s) to any other interface rejected",
		g.Rules, g.Bridge, g.Network, strings.Join(g.Subnets, ", "))
}

// Host runs the commands the guard needs on this machine.
type Host struct {
	Network  string                       // the Docker network to guard; "": kind's
	Run      iptables.Runner              // nil: iptables.ExecRunner
	LookPath func(string) (string, error) // nil: exec.LookPath
}

func (h Host) network() string {
	if h.Network == "" {
		return Network
	}
	return h.Network
}

func (h Host) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if h.Run == nil {
		return iptables.ExecRunner(ctx, name, args...)
	}
	return h.Run(ctx, name, args...)
}

// Ensure makes kind's network when it is missing (as kind would, so that
// kind takes it as its own) and guards it: called before kind starts the
// first node. It is idempotent.
func (h Host) Ensure(ctx context.Context) (Guard, error) {
	n, err := h.inspect(ctx)
	if err != nil {
		return Guard{}, err
	}
	if n == nil {
		if err := h.createNetwork(ctx); err != nil {
			return Guard{}, err
		}
		if n, err = h.inspect(ctx); err != nil {
			return Guard{}, err
		}
		if n == nil {
			return Guard{}, fmt.Errorf("egress guard: docker network %s missing right after it was made", h.network())
		}
	}
	g := Guard{Network: h.network(), Bridge: n.bridge(), Subnets: n.subnets()}
	fw, err := h.firewall(ctx)
	if err != nil {
		return Guard{}, err
	}
	if g.Rules, err = fw.install(ctx, g); err != nil {
		return Guard{}, fmt.Errorf("egress guard on %s: %w", g.Bridge, err)
	}
	return g, nil
}

// Status returns the guard in place, if any.
func (h Host) Status(ctx context.Context) (Guard, bool, error) {
	fw, err := h.firewall(ctx)
	if err != nil {
		return Guard{}, false, err
	}
	where, bridges, err := fw.find(ctx)
	if err != nil || len(bridges) == 0 {
		return Guard{}, false, err
	}
	g := Guard{Network: h.network(), Bridge: bridges[0], Rules: where}
	if n, err := h.inspect(ctx); err == nil && n != nil && n.bridge() == g.Bridge {
		g.Subnets = n.subnets()
	}
	return g, true, nil
}

// Removed is what Remove removed: rules, and the packets they had rejected.
type Removed struct {
	Rules    int
	Rejected uint64
}

func (r Removed) String() string {
	return fmt.Sprintf("%d rules; they refused %d packets on their way off the machine", r.Rules, r.Rejected)
}

// Remove deletes the guard of the host's network, and of any network whose
// bridge is gone (a guard an interrupted run left), and says how many rules
// it removed. Guards of other live networks stay.
func (h Host) Remove(ctx context.Context) (Removed, error) {
	fw, err := h.firewall(ctx)
	if err != nil {
		return Removed{}, err
	}
	mine := ""
	if n, err := h.inspect(ctx); err == nil && n != nil {
		mine = n.bridge()
	}
	return fw.remove(ctx, func(bridge string) bool {
		_, err := net.InterfaceByName(bridge)
		return bridge == mine || err != nil
	})
}

// only says yes to one bridge.
func only(bridge string) func(string) bool {
	return func(b string) bool { return b == bridge }
}

// network is what docker network inspect says of kind's network; nil when
// there is none.
type network struct {
	ID      string            `json:"Id"`
	Options map[string]string `json:"Options"`
	IPAM    struct {
		Config []struct {
			Subnet string `json:"Subnet"`
		} `json:"Config"`
	} `json:"IPAM"`
}

func (n *network) bridge() string {
	if b := n.Options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	return "br-" + n.ID[:12]
}

func (n *network) subnets() []string {
	var s []string
	for _, c := range n.IPAM.Config {
		s = append(s, c.Subnet)
	}
	return s
}

func (h Host) inspect(ctx context.Context) (*network, error) {
	name := h.network()
	out, err := h.run(ctx, "docker", "network", "ls", "--filter", "name=^"+name+"$", "--format", "{{.ID}}")
	if err != nil {
		return nil, fmt.Errorf("egress guard: list docker networks: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = h.run(ctx, "docker", "network", "inspect", ids[0])
	if err != nil {
		return nil, fmt.Errorf("egress guard: inspect docker network %s: %w", name, err)
	}
	var ns []network
	if err := json.Unmarshal(out, &ns); err != nil || len(ns) != 1 || len(ns[0].ID) < 12 {
		return nil, fmt.Errorf("egress guard: docker network inspect %s: unexpected output (%v)", name, err)
	}
	return &ns[0], nil
}

// createNetwork makes kind's network with kind's own settings (v0.33's
// ensureNetwork): a bridge that masquerades, the MTU of Docker's default
// bridge, and an IPv6 ULA subnet derived from the name, probed past
// overlaps; IPv4 only where Docker has no IPv6.
func (h Host) createNetwork(ctx context.Context) error {
	name := h.network()
	args := []string{"network", "create", "-d=bridge", "-o", "com.docker.network.bridge.enable_ip_masquerade=true"}
	if out, err := h.run(ctx, "docker", "network", "inspect", "bridge", "-f", `{{ index .Options "com.docker.network.driver.mtu" }}`); err == nil {
		if mtu, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && mtu > 0 {
			args = append(args, "-o", "com.docker.network.driver.mtu="+strconv.Itoa(mtu))
		}
	}
	var err error
	for attempt := int32(0); attempt < 5; attempt++ {
		_, err = h.run(ctx, "docker", append(args, "--ipv6", "--subnet", ulaSubnet(name, attempt), name)...)
		switch {
		case err == nil, strings.Contains(err.Error(), "already exists"):
			return nil
		case strings.Contains(err.Error(), "IPv6") || strings.Contains(err.Error(), "ip6tables"):
			if _, err = h.run(ctx, "docker", append(args, name)...); err == nil {
				return nil
			}
			return fmt.Errorf("egress guard: create docker network %s: %w", name, err)
		case !strings.Contains(err.Error(), "overlap"):
			return fmt.Errorf("egress guard: create docker network %s: %w", name, err)
		}
	}
	return fmt.Errorf("egress guard: create docker network %s: no IPv6 subnet free: %w", name, err)
}

// ulaSubnet is kind's generateULASubnetFromName: fc00::/8 plus 48 bits of
// the SHA-1 of the name and attempt, a /64.
func ulaSubnet(name string, attempt int32) string {
	ip := make(net.IP, 16)
	ip[0] = 0xfc
	h := sha1.New()
	h.Write([]byte(name))
	binary.Write(h, binary.LittleEndian, attempt)
	copy(ip[2:8], h.Sum(nil)[2:8])
	return (&net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)}).String()
}

// firewall is one way of holding the rules.
type firewall interface {
	install(ctx context.Context, g Guard) (where string, err error)
	find(ctx context.Context) (where string, bridges []string, err error)
	// remove deletes the rules guarding the bridges drop says yes to.
	remove(ctx context.Context, drop func(bridge string) bool) (Removed, error)
}

// firewall picks the iptables flavour that holds Docker's rules, or
// nftables where there is no iptables.
func (h Host) firewall(ctx context.Context) (firewall, error) {
	look := h.LookPath
	if look == nil {
		look = lookPath
	}
	b, err := iptables.DetectBackend(ctx, h.run, look)
	if err == nil {
		return ipt{h: h, b: b}, nil
	}
	if _, nerr := look("nft"); nerr == nil {
		return nft{h: h}, nil
	}
	return nil, fmt.Errorf("egress guard: neither iptables nor nft found: %w", err)
}

// ipt holds the rules in DOCKER-USER (or FORWARD), IPv4 and IPv6.
type ipt struct {
	h Host
	b iptables.Backend
}

func (f ipt) families(g Guard) []struct{ bin, icmp string } {
	fams := []struct{ bin, icmp string }{{f.b.IPv4, "icmp-admin-prohibited"}}
	for _, s := range g.Subnets {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() {
			fams = append(fams, struct{ bin, icmp string }{f.b.IPv6, "icmp6-adm-prohibited"})
			break
		}
	}
	return fams
}

// rules are the guard's rules in one family, the TCP reset first: a refused
// connection fails at once rather than after a timeout.
func rules(bridge, icmp string) [][]string {
	match := []string{"-i", bridge, "!", "-o", bridge}
	tag := []string{"-m", "comment", "--comment", Comment}
	return [][]string{
		append(append(append(append([]string{}, match...), "-p", "tcp"), tag...), "-j", "REJECT", "--reject-with", "tcp-reset"),
		append(append(append([]string{}, match...), tag...), "-j", "REJECT", "--reject-with", icmp),
	}
}

func (f ipt) install(ctx context.Context, g Guard) (string, error) {
	var chains []string
	for _, fam := range f.families(g) {
		chain := "DOCKER-USER"
		if _, err := f.h.run(ctx, fam.bin, "-w", "-t", "filter", "-S", chain); err != nil {
			chain = "FORWARD" // Docker manages no rules in this family
		}
		rs := rules(g.Bridge, fam.icmp)
		// Inserted in reverse at the top, they keep their order there.
		for i := len(rs) - 1; i >= 0; i-- {
			if _, err := f.h.run(ctx, fam.bin, append([]string{"-w", "-t", "filter", "-C", chain}, rs[i]...)...); err == nil {
				continue // in place already
			}
			if _, err := f.h.run(ctx, fam.bin, append([]string{"-w", "-t", "filter", "-I", chain, "1"}, rs[i]...)...); err != nil {
				if _, rerr := f.remove(context.WithoutCancel(ctx), only(g.Bridge)); rerr != nil {
					err = fmt.Errorf("%w (and removing what was added: %v)", err, rerr)
				}
				return "", err
			}
		}
		chains = append(chains, fam.bin+" filter "+chain)
	}
	return strings.Join(chains, ", "), nil
}

// rule is one of the guard's rules in an iptables -v -S listing.
type rule struct {
	chain   string
	bridge  string   // the interface it guards
	del     []string // the arguments of its -D command
	packets uint64   // how many it rejected
}

func listed(listing []byte) []rule {
	var rs []rule
	for line := range strings.Lines(string(listing)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || !commented(f) {
			continue
		}
		r := rule{chain: f[1]}
		if i := slices.Index(f, "-c"); i > 1 && i+2 < len(f) { // -v: the counters, where iptables puts them
			r.packets, _ = strconv.ParseUint(f[i+1], 10, 64)
			f = append(f[:i:i], f[i+3:]...)
		}
		r.del = append([]string{"-D"}, f[1:]...)
		if i := slices.Index(f, "-i"); i >= 0 && i+1 < len(f) {
			r.bridge = f[i+1]
		}
		rs = append(rs, r)
	}
	return rs
}

func commented(f []string) bool {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" && strings.Trim(f[i+1], `"`) == Comment {
			return true
		}
	}
	return false
}

var lookPath = exec.LookPath

func (f ipt) find(ctx context.Context) (string, []string, error) {
	var where, bridges []string
	for i, bin := range []string{f.b.IPv4, f.b.IPv6} {
		out, err := f.h.run(ctx, bin, "-w", "-t", "filter", "-S")
		if err != nil {
			if i == 1 {
				continue // no IPv6 tables: nothing of the guard there
			}
			return "", nil, fmt.Errorf("egress guard: list %s filter: %w", bin, err)
		}
		rs := listed(out)
		if len(rs) > 0 {
			where = append(where, bin+" filter "+rs[0].chain)
		}
		for _, r := range rs {
			if !slices.Contains(bridges, r.bridge) {
				bridges = append(bridges, r.bridge)
			}
		}
	}
	return strings.Join(where, ", "), bridges, nil
}

func (f ipt) remove(ctx context.Context, drop func(bridge string) bool) (Removed, error) {
	var n Removed
	var errs []error
	for i, bin := range []string{f.b.IPv4, f.b.IPv6} {
		out, err := f.h.run(ctx, bin, "-w", "-t", "filter", "-v", "-S")
		if err != nil {
			if i == 0 {
				errs = append(errs, fmt.Errorf("list %s filter: %w", bin, err))
			}
			continue
		}
		for _, r := range listed(out) {
			if !drop(r.bridge) {
				continue
			}
			if _, err := f.h.run(ctx, bin, append([]string{"-w", "-t", "filter"}, r.del...)...); err != nil {
				errs = append(errs, err)
				continue
			}
			n.Rules++
			n.Rejected += r.packets
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("egress guard: remove: %w", err)
	}
	return n, nil
}

// nft holds the rules in a table of their own, hooked into forward before
// the filter priority, where there is no iptables.
type nft struct{ h Host }

func (f nft) install(ctx context.Context, g Guard) (string, error) {
	where := "nft table inet " + nftTable
	if _, bridges, err := f.find(ctx); err == nil && slices.Contains(bridges, g.Bridge) {
		return where, nil
	}
	if _, err := f.remove(ctx, func(string) bool { return true }); err != nil {
		return "", err // one bridge per table: the last network guarded
	}
	q := strconv.Quote(g.Bridge)
	c := strconv.Quote(Comment)
	script := fmt.Sprintf(`table inet %s {
	chain forward {
		type filter hook forward priority filter - 1; policy accept;
		iifname %s oifname != %s meta l4proto tcp reject with tcp reset comment %s
		iifname %s oifname != %s reject with icmpx admin-prohibited comment %s
	}
}
`, nftTable, q, q, c, q, q, c)
	if _, err := f.h.run(ctx, "nft", script); err != nil {
		return "", err
	}
	return where, nil
}

func (f nft) find(ctx context.Context) (string, []string, error) {
	out, err := f.h.run(ctx, "nft", "list", "table", "inet", nftTable)
	if err != nil {
		return "", nil, nil // no table: no guard
	}
	var bridges []string
	for _, w := range strings.Fields(string(out)) {
		if b := strings.Trim(w, `"`); w != b && b != Comment && !slices.Contains(bridges, b) {
			bridges = append(bridges, b)
		}
	}
	return "nft table inet " + nftTable, bridges, nil
}

func (f nft) remove(ctx context.Context, drop func(bridge string) bool) (Removed, error) {
	if _, bridges, _ := f.find(ctx); len(bridges) == 0 || !slices.ContainsFunc(bridges, drop) {
		return Removed{}, nil
	}
	if _, err := f.h.run(ctx, "nft", "delete", "table", "inet", nftTable); err != nil {
		return Removed{}, fmt.Errorf("egress guard: remove: %w", err)
	}
	return Removed{Rules: 2}, nil // nft lists no counters unless asked: not kept
}

// RemoveNetwork removes kind's network once no container of any kind cluster
// is left (kind itself keeps it after its last cluster; the lab made it, in
// Ensure). removed is false when it is absent or still in use.
func (h Host) RemoveNetwork(ctx context.Context) (removed bool, err error) {
	out, err := h.run(ctx, "docker", "ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster")
	if err != nil {
		return false, fmt.Errorf("list kind containers: %w", err)
	}
	if len(strings.Fields(string(out))) > 0 {
		return false, nil
	}
	n, err := h.inspect(ctx)
	if err != nil || n == nil {
		return false, err
	}
	if _, err := h.run(ctx, "docker", "network", "rm", h.network()); err != nil {
		if strings.Contains(err.Error(), "not found") {
			return false, nil
		}
		return false, fmt.Errorf("remove docker network %s: %w", h.network(), err)
	}
	return true, nil
}
