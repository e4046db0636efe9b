package collect

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/results"
)

// sll2Capture writes a pcap as tcpdump -i any does (Linux SLL2 headers).
type sll2Capture struct {
	t   *testing.T
	buf bytes.Buffer
	w   *pcapgo.Writer
	at  time.Time
}

func newSLL2Capture(t *testing.T) *sll2Capture {
	c := &sll2Capture{t: t, at: time.Unix(1_800_000_000, 0)}
	c.w = pcapgo.NewWriterNanos(&c.buf)
	if err := c.w.WriteFileHeader(262144, layers.LinkTypeLinuxSLL2); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *sll2Capture) after(d time.Duration) *sll2Capture { c.at = c.at.Add(d); return c }

// packet writes one UDP packet carrying a DNS message (a query from src when
// dport is 53, else an answer to dst) with TTL ttl.
func (c *sll2Capture) packet(src string, sport uint16, dst string, dport uint16, id uint16, name string, qtype uint16, ttl uint8) *sll2Capture {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if sport == 53 {
		q := m
		m = new(dns.Msg)
		m.SetReply(q)
		m.Rcode = dns.RcodeNameError
	}
	payload, err := m.Pack()
	if err != nil {
		c.t.Fatal(err)
	}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = u.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, u, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	hdr := make([]byte, 20) // SLL2: protocol, reserved, ifindex, hatype, pkttype, addrlen, addr[8]
	hdr[0], hdr[1] = 0x08, 0x00
	hdr[9], hdr[10], hdr[11] = 1, 0, 6
	frame := append(hdr, buf.Bytes()...)
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: c.at, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
		c.t.Fatal(err)
	}
	return c
}

const (
	vip     = "10.96.0.10"
	coredns = "10.244.2.7"
	probeA  = "10.244.1.5"
	probeB  = "10.244.2.9"
	other   = "10.244.1.33" // a pod that is not a probe (dnsmasq, CoreDNS…)
	extName = "api.lab.example.ns.svc.cluster.local."
)

func TestCaptureWrite(t *testing.T) {
	// worker1: probe A's A and AAAA from one port, each seen on its veth
	// (to the VIP) and again leaving the node after DNAT (to a CoreDNS pod),
	// and so are the answers; its AAAA is re-sent 5 s later. A pod that is
	// not a probe talks DNS too.
	w1 := newSLL2Capture(t)
	w1.packet(probeA, 40000, vip, 53, 1, extName, dns.TypeA, 64).
		after(20*time.Microsecond).packet(probeA, 40000, coredns, 53, 1, extName, dns.TypeA, 63).
		after(30*time.Microsecond).packet(probeA, 40000, vip, 53, 2, extName, dns.TypeAAAA, 64).
		after(20*time.Microsecond).packet(probeA, 40000, coredns, 53, 2, extName, dns.TypeAAAA, 63).
		after(time.Millisecond).packet(coredns, 53, probeA, 40000, 1, extName, dns.TypeA, 63).
		after(10*time.Microsecond).packet(vip, 53, probeA, 40000, 1, extName, dns.TypeA, 63).
		after(time.Millisecond).packet(other, 41000, "10.96.9.9", 53, 7, extName, dns.TypeA, 64).
		after(5*time.Second).packet(probeA, 40000, vip, 53, 2, extName, dns.TypeAAAA, 64).
		after(20*time.Microsecond).packet(probeA, 40000, coredns, 53, 2, extName, dns.TypeAAAA, 63).
		after(time.Millisecond).packet(vip, 53, probeA, 40000, 2, extName, dns.TypeAAAA, 63)
	// worker2: probe B, one query, answered, no copies.
	w2 := newSLL2Capture(t)
	w2.packet(probeB, 50000, vip, 53, 9, extName, dns.TypeA, 64).
		after(time.Millisecond).packet(vip, 53, probeB, 50000, 9, extName, dns.TypeA, 64)

	k := &Capture{
		nodes:   []CaptureNode{{Name: "worker1", PodCIDR: "10.244.1.0/24"}, {Name: "worker2", PodCIDR: "10.244.2.0/24"}, {Name: "worker3"}},
		stopped: true,
		pcaps:   map[string][]byte{"worker1": w1.buf.Bytes(), "worker2": w2.buf.Bytes()},
		dropped: 0,
	}
	pods := []results.CapturePod{
		{Name: "probe-a", Node: "worker1", IP: netip.MustParseAddr(probeA)},
		{Name: "probe-b", Node: "worker2", IP: netip.MustParseAddr(probeB)},
		{Name: "probe-c", Node: "worker1"}, // never got an address: nothing to keep
	}
	run := results.RunDir{Dir: t.TempDir()}
	sum, err := k.Write(pods, run.CapturesDir("cell"), run.CaptureSummaryPath("cell"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Queries != 4 || sum.Answers != 3 || sum.Copies != 4 {
		t.Errorf("queries %d, answers %d, copies removed %d; want 4, 3, 4", sum.Queries, sum.Answers, sum.Copies)
	}
	if sum.SamePortPairs != 1 || sum.ResendsAt5s != 1 || sum.Lookups.Count != 2 {
		t.Errorf("same-port pairs %d, re-sends at 5 s %d, lookups %d; want 1, 1, 2", sum.SamePortPairs, sum.ResendsAt5s, sum.Lookups.Count)
	}
	if sum.LinkType != "Linux SLL2" || sum.Filters["worker1"] != "udp port 53 and net 10.244.1.0/24" || sum.Filters["worker3"] != "udp port 53" {
		t.Errorf("link type %q, filters %v", sum.LinkType, sum.Filters)
	}
	if len(sum.Pods) != 2 || sum.Pods[0].Packets != 5 || sum.Pods[1].Packets != 2 || sum.Pods[0].File != filepath.Join("cell", "probe-a.pcap") {
		t.Errorf("pods %+v", sum.Pods)
	}
	// What the claims read.
	cs, ok, err := run.ReadCaptureSummary("cell")
	if err != nil || !ok {
		t.Fatalf("ReadCaptureSummary: %v %v", ok, err)
	}
	if cs.Queries != 4 || cs.SamePortPairs != 1 || cs.Lookups.Count != 2 || cs.Counts().QueriesPerLookup() != 2 {
		t.Errorf("summary as the claims read it: %+v", cs)
	}
	// Each pod's pcap holds its packets only, and `labrun pcap` reads it.
	f, err := os.ReadFile(filepath.Join(run.CapturesDir("cell"), "probe-a.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		n++
	}
	if n != 5 || r.LinkType() != layers.LinkTypeLinuxSLL2 {
		t.Errorf("probe-a.pcap: %d packets, link type %s", n, r.LinkType())
	}
	if _, err := os.Stat(filepath.Join(run.CapturesDir("cell"), "probe-c.pcap")); !os.IsNotExist(err) {
		t.Errorf("a pcap for a pod without an address: %v", err)
	}
	var raw map[string]any
	data, _ := os.ReadFile(run.CaptureSummaryPath("cell"))
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"queries", "same_port_pairs", "lookups", "pods", "copies_removed", "dropped_by_kernel"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("summary lacks %q", key)
		}
	}
}

func TestCaptureWriteBeforeStop(t *testing.T) {
	k := &Capture{}
	if _, err := k.Write(nil, t.TempDir(), filepath.Join(t.TempDir(), "x.json")); err == nil {
		t.Error("Write before Stop accepted")
	}
}

func TestSplitCaptureRejects(t *testing.T) {
	if _, _, _, err := splitCapture([]byte("not a pcap at all, no"), nil, time.Millisecond); err == nil {
		t.Error("garbage accepted")
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeIEEE802_11); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := splitCapture(buf.Bytes(), nil, time.Millisecond); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("802.11 link type: %v", err)
	}
}

// fakeTcpdump stands in for tcpdump in the node scripts' test: it writes
// its -w file, says it listens, and on SIGINT prints its counts and exits.
const fakeTcpdump = `#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -w ] && f=$2; shift; done
printf 'PCAP' > "$f"
trap 'echo "4 packets captured" >&2; echo "2 packets dropped by kernel" >&2; exit 0' INT
echo "tcpdump: listening on any, link-type LINUX_SLL2" >&2
while :; do sleep 0.05; done
`

// TestCaptureNodeScripts runs the start and stop scripts with a fake
// tcpdump: stop ends it with SIGINT and prints its counts; unstopped, the
// time limit ends it.
func TestCaptureNodeScripts(t *testing.T) {
	for _, tool := range []string{"sh", "setsid", "timeout", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the node scripts need it", tool)
		}
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "tcpdump"), []byte(fakeTcpdump), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	sh := func(script string, args ...string) (string, error) {
		cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	alive := func(dir string) bool {
		pid, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			return false
		}
		return exec.Command("kill", "-0", strings.TrimSpace(string(pid))).Run() == nil
	}

	dir := filepath.Join(t.TempDir(), "c1")
	if out, err := sh(captureStart, dir, "60", "udp port 53"); err != nil {
		t.Fatalf("start: %v: %s", err, out)
	}
	if !alive(dir) {
		t.Fatal("tcpdump not running after start")
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sh(captureStop, dir, pcapMark)
	if err != nil {
		t.Fatalf("stop: %v: %s", err, out)
	}
	counts, pcap, found := strings.Cut(out, "\n"+pcapMark+"\n")
	if !found || pcap != "PCAP" {
		t.Errorf("stop printed %q, want the counts, the mark and the capture (PCAP)", out)
	}
	if !strings.Contains(counts, "2 packets dropped by kernel") || droppedByKernel.FindStringSubmatch(counts)[1] != "2" {
		t.Errorf("stop printed %q before the capture, want tcpdump's counts", counts)
	}
	if exec.Command("kill", "-0", strings.TrimSpace(string(pidFile))).Run() == nil {
		t.Error("tcpdump still running after stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the capture's directory is still on the node after stop (%v)", err)
	}

	// Nobody stops it: timeout does, at the limit.
	dir2 := filepath.Join(t.TempDir(), "c2")
	if out, err := sh(captureStart, dir2, "1", "udp port 53"); err != nil {
		t.Fatalf("start: %v: %s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(dir2) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(dir2) {
		t.Error("tcpdump outlived its limit")
	}
	// Stopping what is not running (or was never started) is fine.
	if out, err := sh(captureStop, filepath.Join(t.TempDir(), "none"), pcapMark); err != nil || !strings.Contains(out, "no capture") {
		t.Errorf("stop without a capture: %v: %s", err, out)
	}
}

func TestCaptureFilter(t *testing.T) {
	if f := CaptureFilter("10.244.1.0/24"); f != "udp port 53 and net 10.244.1.0/24" {
		t.Error(f)
	}
	if f := CaptureFilter(""); f != "udp port 53" {
		t.Error(f)
	}
}
