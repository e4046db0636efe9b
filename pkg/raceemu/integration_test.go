package raceemu

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// loopWindow is the window of the tests on loopback: locally sent packets
// carry no kernel receive stamp, so the agent times them by its own clock, and
// on this loaded 2-CPU machine it can be descheduled for over a millisecond
// between the two packets of a pair. What these tests check (same socket or
// not, TCP or not) does not depend on the window's size.
const loopWindow = "20ms"

// sendmmsg sends the queries in one system call, as glibc's getaddrinfo
// sends A and AAAA: with two write calls the answer to the first can come
// back before the second leaves, and then the second rightly does not race.
func sendmmsg(t *testing.T, c *net.UDPConn, queries ...[]byte) {
	t.Helper()
	msgs := make([]ipv4.Message, len(queries))
	for i, q := range queries {
		msgs[i].Buffers = [][]byte{q}
	}
	n, err := ipv4.NewPacketConn(c).WriteBatch(msgs, 0)
	if err != nil || n != len(msgs) {
		t.Fatalf("sendmmsg: %d of %d sent: %v", n, len(msgs), err)
	}
}

// sendPairsOneSocket sends an A and an AAAA query back to back on one socket
// (glibc's sendmmsg), pairs times, each on a fresh socket, and returns how
// many of the 2·pairs queries were answered.
func sendPairsOneSocket(t *testing.T, netns string, pairs int) int {
	t.Helper()
	answered := 0
	for i := range pairs {
		c := udpSocket(t, netns)
		start := time.Now()
		sendmmsg(t, c, dnsQuery(uint16(2*i), TypeA), dnsQuery(uint16(2*i+1), TypeAAAA))
		answered += len(answers(c, start, 200*time.Millisecond))
		c.Close()
	}
	return answered
}

// sendPairsTwoSockets sends A and AAAA back to back from two sockets
// (single-request-reopen).
func sendPairsTwoSockets(t *testing.T, netns string, pairs int) int {
	t.Helper()
	answered := 0
	for i := range pairs {
		c1, c2 := udpSocket(t, netns), udpSocket(t, netns)
		start := time.Now()
		if _, err := c1.Write(dnsQuery(uint16(2*i), TypeA)); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.Write(dnsQuery(uint16(2*i+1), TypeAAAA)); err != nil {
			t.Fatal(err)
		}
		answered += len(answers(c1, start, 200*time.Millisecond)) + len(answers(c2, start, 10*time.Millisecond))
		c1.Close()
		c2.Close()
	}
	return answered
}

func TestIntegrationEmulatorDropsSameSocketPairsOnly(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	const pairs = 20

	// Without the agent nothing is lost: the baseline the drops are measured against.
	if got := sendPairsOneSocket(t, ns, pairs); got != 2*pairs {
		t.Fatalf("without the agent: %d of %d answered", got, 2*pairs)
	}

	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0", "--mode", "emulate")
	if got := sendPairsOneSocket(t, ns, pairs); got != pairs {
		t.Errorf("one socket, pre-5.0: %d of %d answered, want %d (every second query dropped)", got, 2*pairs, pairs)
	}
	if got := sendPairsTwoSockets(t, ns, pairs); got != 2*pairs {
		t.Errorf("two sockets: %d of %d answered, want all", got, 2*pairs)
	}
	s := a.counters(t)
	t.Logf("counters: seen %d clashes %d dropped %d passed %d, timed by the kernel %d", s.Seen, s.Clashes, s.Dropped, s.Passed, s.KernelTime)
	if s.Dropped != pairs || s.Seen != 4*pairs || s.Passed != 3*pairs {
		t.Errorf("counters seen %d dropped %d passed %d, want %d %d %d", s.Seen, s.Dropped, s.Passed, 4*pairs, pairs, 3*pairs)
	}
	if err := a.stop(t); err != nil {
		t.Errorf("agent exit: %v\n%s", err, a.stderr.String())
	}
	if r := rulesIn(t, ns); len(r) != 0 {
		t.Errorf("rules left after SIGTERM: %q", r)
	}
	if !strings.Contains(a.stdout.String(), `"dropped":20`) {
		t.Errorf("final counters on stdout: %q", a.stdout.String())
	}
}

func TestIntegrationProfile50To55DropsAboutHalf(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "5.0-5.5", "--replicas", "2", "--seed", "7")
	const pairs = 40
	got := sendPairsOneSocket(t, ns, pairs)
	s := a.counters(t)
	if s.Clashes != pairs || s.Dropped+uint64(got) != 2*pairs {
		t.Errorf("clashes %d dropped %d answered %d, want %d clashes and dropped+answered = %d", s.Clashes, s.Dropped, got, pairs, 2*pairs)
	}
	// p = 0.5: 40 draws give 8..32 drops with probability > 0.9999.
	if s.Dropped < 8 || s.Dropped > 32 {
		t.Errorf("dropped %d of %d clashes at p = 0.5", s.Dropped, pairs)
	}
}

func TestIntegrationCountOnlyDropsNothing(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0", "--mode", "count-only")
	const pairs = 10
	if got := sendPairsOneSocket(t, ns, pairs); got != 2*pairs {
		t.Errorf("count-only: %d of %d answered", got, 2*pairs)
	}
	if s := a.counters(t); s.WouldDrop != pairs || s.Dropped != 0 || s.Observer != "nflog (passive)" {
		t.Errorf("count-only: would_drop %d dropped %d observer %q, want %d 0 nflog", s.WouldDrop, s.Dropped, s.Observer, pairs)
	}
}

// TestIntegrationCountOnlyWithDelayAAAA runs both readers at once (NFLOG for
// the race, the queue for the delay): a held AAAA is no clash.
func TestIntegrationCountOnlyWithDelayAAAA(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0", "--mode", "count-only+delay-aaaa", "--delay", "30ms")
	const pairs = 5
	if got := sendPairsOneSocket(t, ns, pairs); got != 2*pairs {
		t.Errorf("%d of %d answered", got, 2*pairs)
	}
	// Released 30 ms later, the AAAA finds the A answered (3 ms): its entry
	// is established, so it is not even a new connection for the observer.
	if s := a.counters(t); s.WouldDrop != 0 || s.Delayed != pairs || s.Seen != pairs {
		t.Errorf("would_drop %d delayed %d seen %d, want 0 %d %d", s.WouldDrop, s.Delayed, s.Seen, pairs, pairs)
	}
	if err := a.stop(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
	if r := rulesIn(t, ns); len(r) != 0 {
		t.Errorf("rules left: %q", r)
	}
}

func TestIntegrationTCPSpared(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0")
	// use-vc: A and AAAA over one TCP connection, back to back.
	var c net.Conn
	if err := inNetns(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", testVIP+":53", 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, qt := range []uint16{TypeA, TypeAAAA} {
		q := dnsQuery(uint16(i), qt)
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := range 2 {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("tcp answer %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(l[:]))); err != nil {
			t.Fatalf("tcp answer %d: %v", i, err)
		}
	}
	if s := a.counters(t); s.Seen != 0 || s.Dropped != 0 {
		t.Errorf("tcp reached the emulator: seen %d dropped %d", s.Seen, s.Dropped)
	}
}

func TestIntegrationDelayAAAA(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	const delay = 50 * time.Millisecond
	// With the emulator at p = 1 on as well: the delayed AAAA no longer
	// clashes, so both answers arrive (PHENOMENON.md claim 6 in miniature).
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0", "--mode", "emulate+delay-aaaa", "--delay", delay.String())
	const pairs = 5
	for i := range pairs {
		c := udpSocket(t, ns)
		start := time.Now()
		sendmmsg(t, c, dnsQuery(1, TypeA), dnsQuery(2, TypeAAAA))
		got := answers(c, start, delay+300*time.Millisecond)
		aAt, okA := got[1]
		aaaaAt, okAAAA := got[2]
		if !okA || !okAAAA {
			t.Fatalf("pair %d: answers %v, want both", i, got)
		}
		if aAt > delay/2 || aaaaAt < delay || aaaaAt > delay+40*time.Millisecond {
			t.Errorf("pair %d: A after %v, AAAA after %v; want A fast, AAAA ≈ %v", i, aAt, aaaaAt, delay)
		}
		c.Close()
	}
	s := a.counters(t)
	if s.Delayed != pairs || s.Dropped != 0 || s.Clashes != 0 {
		t.Errorf("delayed %d dropped %d clashes %d, want %d 0 0", s.Delayed, s.Dropped, s.Clashes, pairs)
	}
	if s.DelayMethod == "" || s.Netem == "" {
		t.Errorf("delay method %q, netem %q: the agent must say which it used", s.DelayMethod, s.Netem)
	}
	t.Logf("delay method %q, netem %q", s.DelayMethod, s.Netem)
}

func TestIntegrationFailOpenAfterSIGKILL(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	responder(t, ns)
	a := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0", "--mode", "emulate+delay-aaaa")
	if err := a.cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.wait(t, 5*time.Second)
	if len(rulesIn(t, ns)) == 0 {
		t.Fatal("no rules left after SIGKILL: the test would prove nothing")
	}
	// The rules still queue, nobody listens: --queue-bypass lets packets through.
	c := udpSocket(t, ns)
	start := time.Now()
	for _, q := range [][]byte{dnsQuery(1, TypeA), dnsQuery(2, TypeAAAA)} {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
	}
	if got := answers(c, start, 500*time.Millisecond); len(got) != 2 {
		t.Errorf("after SIGKILL: %d of 2 answered; DNS must keep working", len(got))
	}

	// A new agent removes the dead one's rules before installing its own.
	b := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0")
	if !strings.Contains(b.stderr.String(), "removed stale rules") {
		t.Errorf("the second agent did not report removing stale rules:\n%s", b.stderr.String())
	}
	if err := b.stop(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
	if r := rulesIn(t, ns); len(r) != 0 {
		t.Errorf("rules left: %q", r)
	}
}

func TestIntegrationSecondStartRefused(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	first := startAgent(t, ns, "--window", loopWindow, "--profile", "pre-5.0")
	second := startAgentProcess(t, ns, "--profile", "pre-5.0")
	err := second.wait(t, 10*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("second agent: %v, want a failed exit", err)
	}
	if !strings.Contains(second.stderr.String(), "already running in this network namespace") {
		t.Errorf("second agent's error does not say why: %s", second.stderr.String())
	}
	// The refused agent must not have touched the first one's rules.
	if len(rulesIn(t, ns)) == 0 {
		t.Error("the first agent's rules vanished")
	}
	if err := first.stop(t); err != nil {
		t.Errorf("first agent exit: %v", err)
	}
}

// TestIntegrationIPv6VIP checks the ip6tables path with real packets: an IPv6
// VIP, pairs from one socket, every second packet dropped at p = 1.
func TestIntegrationIPv6VIP(t *testing.T) {
	requireIntegration(t)
	ns := newNetns(t)
	const vip6 = "fd00:53::10"
	run(t, "ip", "-n", ns, "addr", "add", vip6+"/128", "dev", "lo", "nodad")
	var pc net.PacketConn
	if err := inNetns(t, ns, func() (err error) {
		pc, err = net.ListenPacket("udp6", "["+vip6+"]:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := append([]byte(nil), buf[:n]...)
			msg[2] |= 0x80
			time.AfterFunc(answerDelay, func() { _, _ = pc.WriteTo(msg, addr) })
		}
	}()
	a := startAgent(t, ns, "--vip", vip6, "--window", loopWindow, "--profile", "pre-5.0")
	const pairs = 5
	answered := 0
	for i := range pairs {
		var c *net.UDPConn
		if err := inNetns(t, ns, func() (err error) {
			c, err = net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("["+vip6+"]:53")))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		msgs := []ipv6.Message{{Buffers: [][]byte{dnsQuery(uint16(2*i), TypeA)}}, {Buffers: [][]byte{dnsQuery(uint16(2*i+1), TypeAAAA)}}}
		if n, err := ipv6.NewPacketConn(c).WriteBatch(msgs, 0); err != nil || n != 2 {
			t.Fatalf("sendmmsg: %d sent: %v", n, err)
		}
		answered += len(answers(c, time.Now(), 200*time.Millisecond))
		c.Close()
	}
	s := a.counters(t)
	if answered != pairs || s.Dropped != pairs || s.Seen != 2*pairs {
		t.Errorf("ipv6: answered %d, seen %d, dropped %d; want %d, %d, %d", answered, s.Seen, s.Dropped, pairs, 2*pairs, pairs)
	}
	if err := a.stop(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
	if r := rulesIn(t, ns); len(r) != 0 {
		t.Errorf("rules left: %q", r)
	}
}
