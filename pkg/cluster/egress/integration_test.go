package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIntegrationGuard guards a Docker network of the test's own and sends
// real TCP connections from a network namespace plugged into its bridge: to
// a namespace behind another host interface (refused with the guard, made
// without it), and to a second namespace on the same bridge (made either
// way: nodes still reach each other). Nothing leaves the machine: the
// "outside" is a veth of the test's own.
func TestIntegrationGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Docker and network namespaces; run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration test cannot run: needs root")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Fatalf("integration test cannot run: needs a running Docker daemon (`make deps` starts one): %v: %s", err, out)
	}
	ctx := context.Background()
	h := Host{Network: "labrun-egress-test"}
	exec.Command("docker", "network", "rm", h.Network).Run() // a leftover of an interrupted run
	t.Cleanup(func() {
		if _, err := h.Remove(context.Background()); err != nil {
			t.Errorf("remove the guard: %v", err)
		}
		if out, err := exec.Command("docker", "network", "rm", h.Network).CombinedOutput(); err != nil {
			t.Errorf("docker network rm %s: %v: %s", h.Network, err, out)
		}
	})

	g, err := h.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guard: %s", g)
	var gw, sub netip.Prefix
	for _, s := range g.Subnets {
		if p := netip.MustParsePrefix(s); p.Addr().Is4() {
			sub = p
		}
	}
	if !sub.IsValid() {
		t.Fatalf("network %s has no IPv4 subnet: %v", h.Network, g.Subnets)
	}
	gw = netip.PrefixFrom(sub.Addr().Next(), sub.Bits()) // Docker's gateway is the first address
	// Addresses near the top of the subnet, away from what Docker hands out
	// (whatever size of subnet Docker chose: a /16, a /20…).
	addr := func(n byte) netip.Addr {
		a := sub.Masked().Addr().As4()
		v := binary.BigEndian.Uint32(a[:]) + 1<<(32-sub.Bits()) - 1 - uint32(n)
		binary.BigEndian.PutUint32(a[:], v)
		return netip.AddrFrom4(a)
	}

	// inside and peer hang off the bridge, like nodes; outside is behind a
	// veth of the host's, like the world.
	inside := netnsOnBridge(t, "lreg-in", g.Bridge, addr(2), sub.Bits(), gw.Addr())
	peer := netnsOnBridge(t, "lreg-peer", g.Bridge, addr(3), sub.Bits(), gw.Addr())
	outside := netnsBehindHost(t, "lreg-out", "198.51.100.1", "198.51.100.2")
	world := listen(t, outside, "198.51.100.2:0")
	neighbour := listen(t, peer, addr(3).String()+":0")

	if err := dial(inside, world); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("with the guard, a connection to %s behind the host: %v, want refused at once (a TCP reset)", world, err)
	}
	if err := dial(inside, neighbour); err != nil {
		t.Errorf("with the guard, a connection to %s on the same bridge: %v, want made", neighbour, err)
	}
	if again, err := h.Ensure(ctx); err != nil || again.Rules != g.Rules {
		t.Errorf("Ensure twice: %+v, %v", again, err)
	}
	if n := countRules(t, g.Bridge); n != 2*families(g) {
		t.Errorf("after Ensure twice: %d rules of the guard on %s, want %d", n, g.Bridge, 2*families(g))
	}
	if st, ok, err := h.Status(ctx); err != nil || !ok || st.Bridge != g.Bridge {
		t.Errorf("Status: %+v, %v, %v; want the guard on %s", st, ok, err, g.Bridge)
	}

	n, err := h.Remove(ctx)
	if err != nil || n.Rules != 2*families(g) || n.Rejected < 1 {
		t.Errorf("Remove: %s, %v; want %d rules that refused the SYN at least", n, err, 2*families(g))
	}
	if err := dial(inside, world); err != nil {
		t.Errorf("without the guard, a connection to %s: %v, want made (else the refusal above proves nothing)", world, err)
	}
	if n := countRules(t, g.Bridge); n != 0 {
		t.Errorf("after Remove: %d rules of the guard left", n)
	}
	if n, err := h.Remove(ctx); err != nil || n.Rules != 0 {
		t.Errorf("Remove twice: %s, %v", n, err)
	}
}

func families(g Guard) int {
	if strings.Contains(g.Rules, "ip6tables") {
		return 2
	}
	return 1
}

// countRules counts the guard's rules on a bridge, IPv4 and IPv6.
func countRules(t *testing.T, bridge string) int {
	t.Helper()
	n := 0
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(save, "-t", "filter").Output()
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, Comment) && strings.Contains(line, bridge) {
				n++
			}
		}
	}
	return n
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// netnsOnBridge makes a namespace whose veth is a port of bridge.
func netnsOnBridge(t *testing.T, name, bridge string, ip netip.Addr, bits int, gw netip.Addr) string {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"-br")
	run(t, "ip", "link", "set", name+"-br", "master", bridge, "up")
	run(t, "ip", "link", "set", name, "netns", name)
	run(t, "ip", "-n", name, "addr", "add", fmt.Sprintf("%s/%d", ip, bits), "dev", name)
	run(t, "ip", "-n", name, "link", "set", name, "up")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "-n", name, "route", "add", "default", "via", gw.String())
	return name
}

// netnsBehindHost makes a namespace the host reaches through a veth pair:
// host at hostIP, the namespace at nsIP (a /30).
func netnsBehindHost(t *testing.T, name, hostIP, nsIP string) string {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	exec.Command("ip", "link", "del", name+"-h").Run()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", name+"-h", "type", "veth", "peer", "name", name)
	run(t, "ip", "link", "set", name, "netns", name)
	run(t, "ip", "addr", "add", hostIP+"/30", "dev", name+"-h")
	run(t, "ip", "link", "set", name+"-h", "up")
	run(t, "ip", "-n", name, "addr", "add", nsIP+"/30", "dev", name)
	run(t, "ip", "-n", name, "link", "set", name, "up")
	run(t, "ip", "-n", name, "route", "add", "default", "via", hostIP)
	return name
}

// inNetns runs fn on a thread moved into the named namespace; sockets fn
// makes stay there.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listen accepts and closes connections in a namespace; it returns the
// address.
func listen(t *testing.T, ns, addr string) string {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

func dial(ns, addr string) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestIntegrationNftables installs the guard's nftables form (for hosts
// without iptables) in a network namespace of the test's own, around a
// bridge there: the kernel takes the ruleset, the guard finds it, and
// removal leaves no table.
func TestIntegrationNftables(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, nft and network namespaces; run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration test cannot run: needs root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("integration test cannot run: needs nft in PATH")
	}
	const ns = "lreg-nft"
	exec.Command("ip", "netns", "del", ns).Run()
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "br-test", "type", "bridge")
	inNS := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, ee.Stderr)
			}
		}
		return out, err
	}
	ctx := context.Background()
	f := nft{h: Host{Run: inNS}}
	where, err := f.install(ctx, Guard{Bridge: "br-test"})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if again, err := f.install(ctx, Guard{Bridge: "br-test"}); err != nil || again != where {
		t.Errorf("install twice: %q, %v", again, err)
	}
	out, _ := inNS(ctx, "nft", "list", "ruleset")
	if strings.Count(string(out), Comment) != 2 || !strings.Contains(string(out), "hook forward") {
		t.Errorf("ruleset after install:\n%s", out)
	}
	if w, bridges, err := f.find(ctx); err != nil || len(bridges) != 1 || bridges[0] != "br-test" {
		t.Errorf("find: %q %v %v", w, bridges, err)
	}
	if r, err := f.remove(ctx, only("br-other")); err != nil || r.Rules != 0 {
		t.Errorf("remove another bridge's guard: %s, %v; want nothing removed", r, err)
	}
	if r, err := f.remove(ctx, only("br-test")); err != nil || r.Rules != 2 {
		t.Errorf("remove: %s, %v", r, err)
	}
	if out, _ := inNS(ctx, "nft", "list", "ruleset"); strings.Contains(string(out), nftTable) {
		t.Errorf("table left after remove:\n%s", out)
	}
}
