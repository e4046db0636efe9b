package addons

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"golang.org/x/sys/unix"
)

var nlTestConfig = NodeLocalConfig{
	VIP: "10.96.0.10", ClusterDomain: "cluster.local", Upstream: "10.96.7.7", Outside: "10.96.8.8",
	CacheImage: "registry.k8s.io/coredns/coredns:v1.14.2", SetupImage: "docker.io/labrun/labagent:dev",
}

func TestNodeLocalCorefile(t *testing.T) {
	cf := NodeLocalCorefile(nlTestConfig)
	for _, want := range []string{
		"cluster.local:53 {", "in-addr.arpa:53 {", "ip6.arpa:53 {", ".:53 {",
		"bind 169.254.20.10 10.96.0.10",
		"forward . 10.96.7.7 {\n        force_tcp\n    }",
		"forward . 10.96.8.8\n",
		"health 169.254.20.10:9254", "prometheus :9253",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Contains(cf, "resolv.conf") {
		t.Errorf("Corefile forwards to the node's resolv.conf:\n%s", cf)
	}
	if n := strings.Count(cf, "force_tcp"); n != 3 {
		t.Errorf("force_tcp in %d server blocks, want 3 (cluster domain and both reverse zones)", n)
	}
	if n := strings.Count(cf, "bind 169.254.20.10 10.96.0.10"); n != 4 {
		t.Errorf("bind in %d server blocks, want 4", n)
	}
}

func TestNodeLocalRulesAsNodeCache(t *testing.T) {
	rules := NodeLocalRules("10.96.0.10")
	if len(rules) != 12 {
		t.Fatalf("%d rules per address, want node-cache's 12 (without its ready-port pair)", len(rules))
	}
	count := map[string]int{}
	for _, r := range rules {
		count[r.Table+" "+r.Chain]++
		if r.Table == "raw" && !strings.Contains(r.Args, "-j NOTRACK") || r.Table == "filter" && !strings.Contains(r.Args, "-j ACCEPT") {
			t.Errorf("rule %+v: raw rules must NOTRACK, filter rules ACCEPT", r)
		}
	}
	want := map[string]int{"raw PREROUTING": 2, "raw OUTPUT": 6, "filter INPUT": 2, "filter OUTPUT": 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d rules, want %d (all: %v)", k, count[k], n, count)
		}
	}
}

func TestNodeLocalObjects(t *testing.T) {
	cm, svc, ds := NodeLocalObjects(nlTestConfig)
	if cm.Annotations[NodeLocalCacheAnnotation] != NodeLocalCacheCoreDNS || ds.Annotations[NodeLocalCacheAnnotation] != NodeLocalCacheCoreDNS {
		t.Errorf("annotations %v / %v: want the CoreDNS stand-in recorded", cm.Annotations, ds.Annotations)
	}
	if svc.Name != "kube-dns-upstream" || svc.Spec.Selector["k8s-app"] != "kube-dns" || len(svc.Spec.Ports) != 2 {
		t.Errorf("upstream service %s selects %v with %d ports", svc.Name, svc.Spec.Selector, len(svc.Spec.Ports))
	}
	p := ds.Spec.Template.Spec
	if !p.HostNetwork || len(p.Tolerations) != 1 || p.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("pod spec: hostNetwork %v, tolerations %v: want host network on every node", p.HostNetwork, p.Tolerations)
	}
	if p.DNSPolicy != corev1.DNSDefault {
		t.Errorf("dnsPolicy %s, want Default", p.DNSPolicy)
	}
	init := p.InitContainers[0]
	if init.Image != nlTestConfig.SetupImage || init.SecurityContext == nil || !*init.SecurityContext.Privileged ||
		init.Command[0] != "/bin/sh" || !strings.Contains(init.Command[2], "ip addr replace 10.96.0.10/32") {
		t.Errorf("setup container: %+v", init)
	}
	c := p.Containers[0]
	if c.Image != nlTestConfig.CacheImage || strings.Join(c.Args, " ") != "-conf /etc/coredns/Corefile" {
		t.Errorf("cache container %s %v", c.Image, c.Args)
	}
	if h := c.ReadinessProbe.HTTPGet; h == nil || h.Host != NodeLocalIP || h.Port.IntValue() != NodeLocalHealthPort {
		t.Errorf("readiness probe %+v: want the health plugin on the link-local address", c.ReadinessProbe)
	}

	nc := nlTestConfig
	nc.NodeCache, nc.CacheImage = true, "registry.k8s.io/dns/k8s-dns-node-cache:1.22.28"
	_, _, ds = NodeLocalObjects(nc)
	c = ds.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-localip 169.254.20.10,10.96.0.10", "-upstreamsvc kube-dns-upstream", "-setupinterface=false", "-basecorefile /etc/coredns/Corefile.base"} {
		if !strings.Contains(args, want) {
			t.Errorf("node-cache args %q lack %q", args, want)
		}
	}
	if ds.Annotations[NodeLocalCacheAnnotation] != NodeLocalCacheNodeCache {
		t.Errorf("annotation %v: want node-cache recorded", ds.Annotations)
	}
}

func TestClusterDomain(t *testing.T) {
	for in, want := range map[string]string{
		".:53 {\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n": "cluster.local",
		".:53 {\n    kubernetes lab.internal. in-addr.arpa {\n":          "lab.internal",
		".:53 {\n    forward . 1.2.3.4\n}\n":                             "cluster.local",
	} {
		if got := clusterDomain(in); got != want {
			t.Errorf("clusterDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNodeLocalMissingRules(t *testing.T) {
	var save strings.Builder
	save.WriteString("*raw\n")
	for _, ip := range []string{NodeLocalIP, "10.96.0.10"} {
		for _, p := range []string{"udp", "tcp"} {
			fmt.Fprintf(&save, "-A PREROUTING -d %s/32 -p %s -m %s --dport 53 -m comment --comment \"NodeLocal DNS Cache: skip conntrack\" -j NOTRACK\n", ip, p, p)
			fmt.Fprintf(&save, "-A OUTPUT -s %s/32 -p %s -m %s --sport 53 -m comment --comment \"NodeLocal DNS Cache: skip conntrack\" -j NOTRACK\n", ip, p, p)
		}
	}
	if m := NodeLocalMissingRules(save.String(), "10.96.0.10"); len(m) != 0 {
		t.Errorf("complete ruleset: missing %v", m)
	}
	partial := strings.ReplaceAll(save.String(), "-A PREROUTING -d 10.96.0.10/32 -p udp", "-A PREROUTING -d 10.96.0.11/32 -p udp")
	if m := NodeLocalMissingRules(partial, "10.96.0.10"); len(m) != 1 || !strings.Contains(m[0], "PREROUTING udp -d 10.96.0.10/32") {
		t.Errorf("ruleset without the VIP's udp PREROUTING rule: missing %v", m)
	}
}

// TestIntegrationNodeLocalSetup runs the setup script (twice) in a "node"
// network namespace joined by a veth to a "pod" one, answers UDP on the VIP
// in the node, and checks that a pod's query is answered while the node's
// conntrack table gets no entry for it. Needs root, ip and iptables.
func TestIntegrationNodeLocalSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs root and network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration: needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save", "conntrack", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("integration: %s is missing", tool)
		}
	}
	const vip = "10.96.0.10"
	node, pod := fmt.Sprintf("nl-node-%d", os.Getpid()), fmt.Sprintf("nl-pod-%d", os.Getpid())
	for _, ns := range []string{node, pod} {
		nlRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		nlRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	nlRun(t, "ip", "-n", node, "link", "add", "veth-pod", "type", "veth", "peer", "name", "eth0", "netns", pod)
	nlRun(t, "ip", "-n", node, "addr", "add", "10.244.1.1/24", "dev", "veth-pod")
	nlRun(t, "ip", "-n", node, "link", "set", "veth-pod", "up")
	nlRun(t, "ip", "-n", pod, "addr", "add", "10.244.1.5/24", "dev", "eth0")
	nlRun(t, "ip", "-n", pod, "link", "set", "eth0", "up")
	nlRun(t, "ip", "-n", pod, "route", "add", "default", "via", "10.244.1.1")

	// A node's ruleset uses conntrack (kube-proxy's does), which registers
	// conntrack's hooks in the namespace: without it nothing would be tracked.
	nlRun(t, "ip", "netns", "exec", node, "iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	script := NodeLocalSetupScript(vip)
	first := nlRun(t, "ip", "netns", "exec", node, "sh", "-c", script)
	t.Logf("setup:\n%s", first)
	save1 := nlRun(t, "ip", "netns", "exec", node, "iptables-save")
	nlRun(t, "ip", "netns", "exec", node, "sh", "-c", script)
	save2 := nlRun(t, "ip", "netns", "exec", node, "iptables-save")
	if n1, n2 := strings.Count(save1, "NodeLocal DNS Cache"), strings.Count(save2, "NodeLocal DNS Cache"); n1 != 24 || n2 != n1 {
		t.Errorf("rules after one run %d, after two %d: want 24 both times (12 per address, none twice)", n1, n2)
	}
	if m := NodeLocalMissingRules(save2, vip); len(m) > 0 {
		t.Errorf("missing %v", m)
	}
	addrs := nlRun(t, "ip", "-n", node, "-o", "-4", "addr", "show", "dev", NodeLocalInterface)
	for _, ip := range []string{NodeLocalIP, vip} {
		if !strings.Contains(addrs, " "+ip+"/32") {
			t.Errorf("%s lacks %s: %s", NodeLocalInterface, ip, addrs)
		}
	}

	var server net.PacketConn
	if err := nlInNetns(node, func() (err error) { server, err = net.ListenPacket("udp4", vip+":53"); return err }); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			buf[2] |= 0x80
			server.WriteTo(buf[:n], addr)
		}
	}()
	nlRun(t, "ip", "netns", "exec", node, "conntrack", "-F")
	var client *net.UDPConn
	if err := nlInNetns(pod, func() (err error) {
		client, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(vip), Port: 53})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	query := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}
	for i := 0; i < 3; i++ {
		if _, err := client.Write(query); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := client.Read(buf)
		if err != nil || n != len(query) || buf[2]&0x80 == 0 {
			t.Fatalf("query %d to %s:53 from the pod: %d bytes, %v", i, vip, n, err)
		}
	}
	entries := nlRun(t, "ip", "netns", "exec", node, "sh", "-c", "conntrack -L 2>/dev/null; true")
	if strings.Contains(entries, "dport=53") {
		t.Errorf("the node tracked the pod's DNS queries:\n%s", entries)
	}
	t.Logf("3 queries answered on %s from the pod; node conntrack table:\n%s", vip, entries)

	// The control: without the PREROUTING rule for the VIP the same query is
	// tracked, so the empty table above is the rule's doing.
	nlRun(t, "ip", "netns", "exec", node, "iptables", "-t", "raw", "-F", "PREROUTING")
	if _, err := client.Write(query); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := client.Read(make([]byte, 512)); err != nil {
		t.Fatalf("query without the NOTRACK rule: %v", err)
	}
	entries = nlRun(t, "ip", "netns", "exec", node, "sh", "-c", "conntrack -L 2>/dev/null; true")
	if !strings.Contains(entries, "dport=53") {
		t.Errorf("without the NOTRACK rule the query was not tracked either: the check above proves nothing:\n%s", entries)
	}
}

func nlRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nlInNetns runs fn on a thread in netns; sockets fn opens stay there.
func nlInNetns(netns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		target, err := os.Open(filepath.Join("/run/netns", netns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", netns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
