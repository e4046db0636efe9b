//go:build e2e

package e2ekit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

// labRanges are the addresses of the lab: Docker's private networks (kind's
// among them), the clusters' pod and service CIDRs, IPv6 ULAs (kind's
// network). None may be seen on the host's outward interface.
var labRanges = []netip.Prefix{
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("10.96.0.0/12"),
	netip.MustParsePrefix("10.244.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// labZones are names only the lab asks for.
var labZones = []string{"cluster.local.", "lab.example.", "svc.", "kube-system."}

// Egress is a capture of everything on the host's outward interface.
type Egress struct {
	Iface    string
	file     string
	resolver []netip.Addr
	cmd      *exec.Cmd
	stderr   *strings.Builder
}

// OutwardInterface is the interface of the host's default route.
func OutwardInterface() (string, error) {
	out, err := exec.Command("ip", "-o", "route", "show", "default").Output()
	if err != nil {
		return "", fmt.Errorf("ip route show default: %w", err)
	}
	f := strings.Fields(string(out))
	if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
		return f[i+1], nil
	}
	return "", fmt.Errorf("no default route on this host (ip route: %q): nothing can leave it", strings.TrimSpace(string(out)))
}

// WatchEgress starts tcpdump on the host's outward interface; Check stops
// it and fails t for every packet of the lab it saw.
func WatchEgress(t *testing.T) *Egress {
	t.Helper()
	iface, err := OutwardInterface()
	if err != nil {
		t.Fatal(err)
	}
	e := &Egress{Iface: iface, file: filepath.Join(t.TempDir(), "egress.pcap"), resolver: resolvers(), stderr: &strings.Builder{}}
	e.cmd = exec.Command("tcpdump", "-i", iface, "-n", "-U", "-s", "512", "-w", e.file)
	pr, pw := io.Pipe()
	e.cmd.Stderr = pw
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("tcpdump on %s: %v", iface, err)
	}
	// Wait until tcpdump listens, so the capture covers everything after.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			e.stderr.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "listening on") {
				close(ready)
				once = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		t.Fatalf("tcpdump on %s did not start: %s", iface, e.stderr)
	}
	t.Cleanup(func() { e.stop() })
	return e
}

func (e *Egress) stop() {
	if e.cmd.ProcessState == nil {
		e.cmd.Process.Signal(syscall.SIGINT)
		e.cmd.Wait()
	}
}

// resolvers are the host's DNS servers (what Docker's embedded DNS forwards to).
func resolvers() []netip.Addr {
	var out []netip.Addr
	data, _ := os.ReadFile("/etc/resolv.conf")
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

// Check stops the capture and fails t for each packet from or to the lab's
// addresses, and each DNS query to the host's resolver for a name of the
// lab or CoreDNS's loop check (HINFO); every other packet is listed, not
// judged (the host's own traffic).
func (e *Egress) Check(t *testing.T) {
	t.Helper()
	e.stop()
	f, err := os.Open(e.file)
	if err != nil {
		t.Fatalf("egress capture: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("egress capture %s: %v", e.file, err)
	}
	var lab []string
	other := map[string]int{}
	total := 0
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("egress capture %s: %v", e.file, err)
		}
		total++
		verdict, what := e.classify(gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy))
		line := ci.Timestamp.Format("15:04:05.000") + " " + what
		if verdict {
			lab = append(lab, line)
		} else {
			other[peerOf(what)]++
		}
	}
	t.Logf("egress on %s: %d packets captured, %d of the lab (tcpdump: %s)", e.Iface, total, len(lab), strings.TrimSpace(e.stderr.String()))
	keys := make([]string, 0, len(other))
	for k := range other {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 20 {
			t.Logf("  … and %d more peers", len(keys)-i)
			break
		}
		t.Logf("  not the lab's: %d × %s", other[k], k)
	}
	for _, l := range lab {
		t.Errorf("left the machine: %s", l)
	}
}

// peerOf drops the source port of a description: one line per peer.
func peerOf(what string) string {
	f := strings.Fields(what)
	if len(f) >= 4 {
		if i := strings.LastIndex(f[1], ":"); i > 0 {
			f[1] = f[1][:i]
		}
	}
	return strings.Join(f, " ")
}

// classify says whether a packet is the lab's, and describes it.
func (e *Egress) classify(p gopacket.Packet) (bool, string) {
	var src, dst netip.Addr
	switch n := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(n.SrcIP)
		dst, _ = netip.AddrFromSlice(n.DstIP)
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(n.SrcIP)
		dst, _ = netip.AddrFromSlice(n.DstIP)
	default:
		return false, "non-IP " + p.LinkLayer().LayerType().String()
	}
	proto, sport, dport := "ip", "", ""
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		proto, sport, dport = "tcp", fmt.Sprint(uint16(l.SrcPort)), fmt.Sprint(uint16(l.DstPort))
	case *layers.UDP:
		proto, sport, dport = "udp", fmt.Sprint(uint16(l.SrcPort)), fmt.Sprint(uint16(l.DstPort))
	}
	what := fmt.Sprintf("%s %s:%s > %s:%s", proto, src, sport, dst, dport)
	for _, r := range labRanges {
		if r.Contains(src) || r.Contains(dst) {
			return true, what + " (a lab address)"
		}
	}
	if slices.Contains(e.resolver, dst) {
		var m dns.Msg
		if tl := p.TransportLayer(); tl != nil && m.Unpack(tl.LayerPayload()) == nil && len(m.Question) > 0 {
			q := m.Question[0]
			what += fmt.Sprintf(" DNS %s? %s", dns.TypeToString[q.Qtype], q.Name)
			if q.Qtype == dns.TypeHINFO {
				return true, what + " (CoreDNS's loop check, sent to the host's resolver)"
			}
			for _, z := range labZones {
				if strings.HasSuffix(strings.ToLower(q.Name), z) {
					return true, what + " (a name of the lab, sent to the host's resolver)"
				}
			}
		}
	}
	return false, what
}
