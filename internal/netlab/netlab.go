// Package netlab builds a small Kubernetes-like DNS path out of network
// namespaces, for integration tests and for a developer to try things:
//
//	client-0 ─┐                       ┌─ dns-0 (lab upstream, 10.98.0.2:53)
//	client-1 ─┼─ router (VIP 10.96.0.10:53 ─DNAT random 50/50─┤
//	   ...   ─┘                       └─ dns-1 (lab upstream, 10.98.1.2:53)
//
// The router DNATs the VIP the way kube-proxy in iptables mode does: a
// service chain that jumps to one endpoint chain with `-m statistic --mode
// random --probability 0.5` and to the other otherwise, so each new conntrack
// entry picks a backend at random. Each client namespace has its own
// resolv.conf in /etc/netns/NAME/, which `ip netns exec` bind-mounts over
// /etc/resolv.conf: a real resolver library run there reads it.
//
// Everything the lab makes lives inside its own namespaces (no interface,
// address or rule is added to the host's namespace), all names start with a
// per-lab prefix (lr-PID-N), and Close removes every namespace (which takes
// their links and rules with them) and every /etc/netns directory. The DNS
// servers run in the calling process, on sockets opened inside the server
// namespaces.
//
// Needs root, the `ip` command (iproute2), iptables-restore and, for
// Capture, tcpdump.
package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"labrun.dev/labrun/pkg/upstream"
)

// VIP is the cluster DNS service address clients use, as in a kind cluster.
const VIP = "10.96.0.10"

// DefaultResolvConf is what a pod in namespace "default" gets from the kubelet.
const DefaultResolvConf = "nameserver " + VIP + "\n" +
	"search default.svc.cluster.local svc.cluster.local cluster.local\n" +
	"options ndots:5\n"

// Config describes a lab.
type Config struct {
	// Clients are the client namespaces' resolv.conf contents, one per client;
	// an empty string means DefaultResolvConf. At least one.
	Clients []string
	// Upstream is what both DNS servers answer; zero value: upstream.Defaults().
	Upstream upstream.Config
	// Logf, when set, receives each command the lab runs (t.Logf fits).
	Logf func(format string, args ...any)
}

// Lab is a running lab. Its fields name what a test needs to reach into it.
type Lab struct {
	Prefix    string   // every namespace name starts with it
	Router    string   // namespace of the router (DNAT, conntrack)
	Servers   []string // namespaces of the two DNS servers
	Clients   []string // client namespaces, in Config.Clients order
	ServerIPs []string // address each DNS server listens on, port 53
	ClientIPs []string // address of each client
	DNS       []*upstream.Server

	logf   func(string, ...any)
	mu     sync.Mutex
	closed bool
}

var labSeq atomic.Uint64

// Require says what this host lacks to build a lab, or nil.
func Require() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (euid 0)")
	}
	for _, tool := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("netlab needs %s", strings.Join(missing, ", "))
	}
	return nil
}

// New builds a lab. On any failure it removes what it made already.
func New(ctx context.Context, cfg Config) (lab *Lab, err error) {
	if err := Require(); err != nil {
		return nil, err
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("netlab: no clients")
	}
	if cfg.Upstream.Zone == "" {
		cfg.Upstream = upstream.Defaults()
	}
	h := [2]*upstream.Handler{}
	for i := range h {
		if h[i], err = upstream.NewHandler(cfg.Upstream); err != nil {
			return nil, fmt.Errorf("netlab: %w", err)
		}
	}
	prefix := fmt.Sprintf("lr-%d-%d", os.Getpid(), labSeq.Add(1))
	l := &Lab{Prefix: prefix, Router: prefix + "-r", logf: cfg.Logf}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
			lab = nil
		}
	}()
	if err := l.addNS(ctx, l.Router); err != nil {
		return nil, err
	}
	if err := l.ip(ctx, "-n", l.Router, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if _, err := l.Run(ctx, l.Router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		return nil, err
	}
	for i := range 2 {
		ns := fmt.Sprintf("%s-dns%d", prefix, i)
		ip := fmt.Sprintf("10.98.%d.2", i)
		if err := l.attach(ctx, ns, fmt.Sprintf("s%d", i), fmt.Sprintf("10.98.%d.1", i), ip); err != nil {
			return nil, err
		}
		l.Servers, l.ServerIPs = append(l.Servers, ns), append(l.ServerIPs, ip)
		srv, err := l.serveDNS(ns, ip, h[i])
		if err != nil {
			return nil, err
		}
		l.DNS = append(l.DNS, srv)
	}
	for i, rc := range cfg.Clients {
		ns := fmt.Sprintf("%s-c%d", prefix, i)
		ip := fmt.Sprintf("10.99.%d.2", i)
		if err := l.attach(ctx, ns, fmt.Sprintf("c%d", i), fmt.Sprintf("10.99.%d.1", i), ip); err != nil {
			return nil, err
		}
		l.Clients, l.ClientIPs = append(l.Clients, ns), append(l.ClientIPs, ip)
		if rc == "" {
			rc = DefaultResolvConf
		}
		if err := l.SetResolvConf(ns, rc); err != nil {
			return nil, err
		}
	}
	if err := l.dnat(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Rules are the router's nat table, kube-proxy style.
func (l *Lab) rules() string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:LAB-SVC-DNS - [0:0]\n:LAB-SEP-DNS0 - [0:0]\n:LAB-SEP-DNS1 - [0:0]\n")
	for _, proto := range []string{"udp", "tcp"} {
		fmt.Fprintf(&b, "-A PREROUTING -d %s/32 -p %s --dport 53 -j LAB-SVC-DNS\n", VIP, proto)
	}
	b.WriteString("-A LAB-SVC-DNS -m statistic --mode random --probability 0.50000000000 -j LAB-SEP-DNS0\n")
	b.WriteString("-A LAB-SVC-DNS -j LAB-SEP-DNS1\n")
	for i, ip := range l.ServerIPs {
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "-A LAB-SEP-DNS%d -p %s -j DNAT --to-destination %s:53\n", i, proto, ip)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func (l *Lab) dnat(ctx context.Context) error {
	cmd := l.Command(ctx, l.Router, "iptables-restore")
	cmd.Stdin = strings.NewReader(l.rules())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: install the DNAT rules in %s: %w: %s", l.Router, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) addNS(ctx context.Context, ns string) error {
	return l.ip(ctx, "netns", "add", ns)
}

// attach makes namespace ns and a veth pair between it (eth0, addr/24) and
// the router (ifname, gw/24); ns's default route goes to the router.
func (l *Lab) attach(ctx context.Context, ns, ifname, gw, addr string) error {
	steps := [][]string{
		{"netns", "add", ns},
		// Created inside the router and moved straight into ns: the host's
		// namespace never sees either end.
		{"-n", l.Router, "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", l.Router, "addr", "add", gw + "/24", "dev", ifname},
		{"-n", l.Router, "link", "set", ifname, "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", gw},
	}
	for _, s := range steps {
		if err := l.ip(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) serveDNS(ns, ip string, h *upstream.Handler) (*upstream.Server, error) {
	var pc net.PacketConn
	var ln net.Listener
	err := l.Do(ns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", ip+":53"); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", ip+":53"); err != nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: listen for DNS in %s: %w", ns, err)
	}
	return upstream.Serve(h, pc, ln)
}

// SetResolvConf writes the resolv.conf that processes started in client ns
// with Command (ip netns exec) see as /etc/resolv.conf.
func (l *Lab) SetResolvConf(ns, content string) error {
	dir := filepath.Join("/etc/netns", ns)
	var err error
	// Another lab's Close may remove an empty /etc/netns between our MkdirAll
	// and WriteFile: try again then.
	for try := 0; try < 3; try++ {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			continue
		}
		if err = os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(content), 0o644); err == nil {
			return nil
		}
	}
	return fmt.Errorf("netlab: %w", err)
}

// Command returns `ip netns exec ns argv...`, not started: the process sees
// the namespace's network and its /etc/netns/ns files. A process still
// running when the lab closes keeps the namespace alive: wait for it first
// (CommandContext semantics: ctx kills it).
func (l *Lab) Command(ctx context.Context, ns string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// Run runs argv in ns and returns its combined output; the error carries the
// command and its output.
func (l *Lab) Run(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	l.logf("netlab: [%s] %s", ns, strings.Join(argv, " "))
	out, err := l.Command(ctx, ns, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netlab: [%s] %s: %w: %s", ns, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (l *Lab) ip(ctx context.Context, args ...string) error {
	l.logf("netlab: ip %s", strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs fn on an OS thread that has entered namespace ns. Sockets fn opens
// belong to ns for their whole life, whichever goroutine uses them later.
// The thread is discarded afterwards, so no other goroutine ever runs in ns.
func (l *Lab) Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends, the runtime retires the
		// thread instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ConntrackStat returns ns's /proc/net/stat/nf_conntrack as the kernel
// writes it (a header line, then one hex row per CPU).
func (l *Lab) ConntrackStat(ns string) (string, error) {
	var b []byte
	err := l.Do(ns, func() error {
		// /proc/net follows the reading thread's namespace only through
		// /proc/thread-self; /proc/self would follow the main thread.
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/stat/nf_conntrack")
		return err
	})
	return string(b), err
}

// Capture runs tcpdump in ns on iface (e.g. "eth0" in a client), writing a
// pcap to file, and returns once it is capturing. Stop ends it (SIGINT, so
// the file is complete) and returns tcpdump's own statistics.
func (l *Lab) Capture(ctx context.Context, ns, iface, file string, filter ...string) (*Capture, error) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, errors.New("netlab: capture needs tcpdump")
	}
	// --immediate-mode: without it TPACKET_V3 holds packets in a block that
	// SIGINT discards, and a short capture comes out empty.
	args := append([]string{"tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "512", "-w", file}, filter...)
	cmd := l.Command(ctx, ns, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netlab: start tcpdump in %s: %w", ns, err)
	}
	c := &Capture{cmd: cmd, lines: make(chan string, 16)}
	sc := bufio.NewScanner(stderr)
	go func() {
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				err := cmd.Wait()
				return nil, fmt.Errorf("netlab: tcpdump in %s exited before capturing: %v", ns, err)
			}
			c.stats = append(c.stats, line)
			if strings.Contains(line, "listening on") {
				return c, nil
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("netlab: tcpdump in %s did not start capturing within 10 s: %v", ns, c.stats)
		}
	}
}

// Capture is a running tcpdump.
type Capture struct {
	cmd   *exec.Cmd
	lines chan string
	stats []string
}

// Stop ends the capture and returns tcpdump's closing lines
// ("N packets captured", "N packets dropped by kernel").
func (c *Capture) Stop() ([]string, error) {
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		return nil, fmt.Errorf("netlab: stop tcpdump: %w", err)
	}
	var out []string
	for line := range c.lines {
		out = append(out, line)
	}
	if err := c.cmd.Wait(); err != nil {
		return out, fmt.Errorf("netlab: tcpdump: %w: %v", err, out)
	}
	return out, nil
}

// Close stops the DNS servers and removes every namespace (with their links
// and rules) and /etc/netns directory the lab made. It carries on after a
// failure and reports them all; calling it twice is harmless.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range l.DNS {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop DNS server: %w", err))
		}
	}
	for _, ns := range l.namespaces() {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			if err := l.ip(ctx, "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.Remove("/etc/netns") // only if empty: another lab may still use it
	return errors.Join(errs...)
}

// namespaces lists every namespace name the lab may have made, made or not,
// so a half-built lab is removed too.
func (l *Lab) namespaces() []string {
	names := []string{l.Router}
	for i := range 2 {
		names = append(names, fmt.Sprintf("%s-dns%d", l.Prefix, i))
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Prefix+"-c") {
			names = append(names, e.Name())
		}
	}
	for _, c := range l.Clients {
		if !contains(names, c) {
			names = append(names, c)
		}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Leftovers lists the namespaces and /etc/netns directories of the lab with
// prefix that still exist: empty after a clean Close.
func Leftovers(prefix string) []string {
	var left []string
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix+"-") {
				left = append(left, filepath.Join(dir, e.Name()))
			}
		}
	}
	return left
}

// RemoveStale removes namespaces and /etc/netns directories left by labs
// whose process is gone (a test killed before its cleanup ran). Labs of live
// processes are left alone, so parallel test binaries do not clash.
func RemoveStale(ctx context.Context) error {
	var errs []error
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			var pid, n int
			var rest string
			if c, _ := fmt.Sscanf(e.Name(), "lr-%d-%d-%s", &pid, &n, &rest); c < 2 || pid == os.Getpid() {
				continue
			}
			if unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM) {
				continue // its owner still runs
			}
			var err error
			if dir == "/run/netns" {
				if out, cerr := exec.CommandContext(ctx, "ip", "netns", "del", e.Name()).CombinedOutput(); cerr != nil {
					err = fmt.Errorf("ip netns del %s: %w: %s", e.Name(), cerr, strings.TrimSpace(string(out)))
				}
			} else {
				err = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// TB is the part of testing.TB that ForTest uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// ForTest builds a lab for a test and removes it when the test ends, even
// when it fails. A host that cannot build a lab fails the test, naming what
// is missing: an integration test that cannot run must not pass.
func ForTest(t TB, ctx context.Context, cfg Config) *Lab {
	t.Helper()
	if err := Require(); err != nil {
		t.Fatalf("%v (integration tests need them; run with -short to skip)", err)
	}
	if err := RemoveStale(ctx); err != nil {
		t.Logf("netlab: removing stale labs: %v", err)
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	l, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("netlab: close: %v", err)
		}
		if left := Leftovers(l.Prefix); len(left) > 0 {
			t.Errorf("netlab: left behind after close: %v", left)
		}
	})
	return l
}
