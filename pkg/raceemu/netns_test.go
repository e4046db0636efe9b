package raceemu

// Helpers of the integration tests: a network namespace of the test's own,
// the agent binary run inside it, a DNS responder and clients whose sockets
// live in it. Nothing leaves the machine: every address is on the namespace's
// loopback.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"labrun.dev/labrun/pkg/results/emulator"
)

const testVIP = "10.253.0.10"

// answerDelay is how long the test responder waits before answering.
const answerDelay = 3 * time.Millisecond

// requireIntegration skips under -short and fails, naming what is missing,
// when the machine cannot run the test.
func requireIntegration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs root, network namespaces, iptables with NFQUEUE; run without -short")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-save", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" in PATH")
		}
	}
	if len(missing) == 0 {
		if err := nfqueueTarget(); err != nil {
			missing = append(missing, "the iptables NFQUEUE target with --queue-bypass ("+err.Error()+")")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("integration test cannot run: missing %s", strings.Join(missing, ", "))
	}
	checkHostRulesetUnchanged(t)
}

// nfqueueTarget checks once, in a throwaway network namespace, that the
// kernel and iptables accept an NFQUEUE rule with --queue-bypass.
var nfqueueTarget = sync.OnceValue(func() error {
	cmd := exec.Command("iptables", "-w", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-j", "NFQUEUE", "--queue-num", "1", "--queue-bypass")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
})

// hostRuleset is the host namespace's firewall, as the tools print it,
// without counters.
func hostRuleset(t testing.TB) []string {
	t.Helper()
	var lines []string
	for _, argv := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"nft", "-s", "list", "ruleset"}} {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			if _, lerr := exec.LookPath(argv[0]); lerr != nil {
				continue
			}
			t.Fatalf("%v: %v", argv, err)
		}
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "#") { // save headers carry the time
				continue
			}
			if i := strings.LastIndex(line, " ["); i > 0 && strings.HasPrefix(line, ":") {
				line = line[:i] // chain counters
			}
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}

// ourMarkers are the names the agent and the test labs use; a host rule
// holding one of them is a leak.
var ourMarkers = []string{RuleComment, chainName, "NFQUEUE", "queue num", "lr-emu", "LAB-S", testVIP}

// checkHostRulesetUnchanged fails the test if the host's ruleset gained or
// lost a rule of ours. Other changes (this machine is shared: Docker and kind
// add rules of their own at any time) are only logged.
func checkHostRulesetUnchanged(t testing.TB) {
	before := hostRuleset(t)
	t.Cleanup(func() {
		after := hostRuleset(t)
		added, removed := diffLines(before, after), diffLines(after, before)
		for _, l := range append(added, removed...) {
			for _, m := range ourMarkers {
				if strings.Contains(l, m) {
					t.Errorf("the host's ruleset changed in a rule of ours: %q", l)
				}
			}
		}
		if len(added)+len(removed) > 0 {
			t.Logf("the host's ruleset changed meanwhile (not by this test): +%d -%d lines", len(added), len(removed))
		}
	})
}

// diffLines lists the lines of b that a lacks (as a multiset).
func diffLines(a, b []string) []string {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	var extra []string
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
			continue
		}
		extra = append(extra, l)
	}
	return extra
}

var netnsSeq atomic.Int32

// newNetns makes a network namespace with lo up and the VIP on it, and
// deletes it when the test ends.
func newNetns(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("lr-emu-%d-%d", os.Getpid(), netnsSeq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "-n", name, "addr", "add", testVIP+"/32", "dev", "lo")
	return name
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns runs fn on a thread that is in netns; sockets fn creates stay in it.
func inNetns(t testing.TB, netns string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
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
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime kills it when this goroutine ends.
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// responder answers every DNS query on VIP:53 (UDP and TCP) with the query
// itself, QR set: enough for a client to see an answer.
func responder(t testing.TB, netns string) { respond(t, netns, answerDelay) }

// respond is responder with a chosen answer delay (0 for benchmarks).
func respond(t testing.TB, netns string, delay time.Duration) {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	if err := inNetns(t, netns, func() (err error) {
		if pc, err = net.ListenPacket("udp4", testVIP+":53"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", testVIP+":53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 12 {
				// Answer a little later, as a server over a network would: an
				// answer that beat the second query of a pair would spare it
				// (its conntrack entry is then established), and on this
				// loaded 2-CPU machine a sender can be descheduled that long.
				msg := append([]byte(nil), buf[:n]...)
				msg[2] |= 0x80
				if delay == 0 {
					_, _ = pc.WriteTo(msg, addr)
					continue
				}
				time.AfterFunc(delay, func() { _, _ = pc.WriteTo(msg, addr) })
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var l [2]byte
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					msg := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(c, msg); err != nil || len(msg) < 12 {
						return
					}
					msg[2] |= 0x80
					if _, err := c.Write(append(l[:], msg...)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// dnsQuery is a query for lab.example. of qtype with id.
func dnsQuery(id, qtype uint16) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, byte(qtype >> 8), byte(qtype), 0, 1}
	return b
}

// nextPort hands out source ports: an ephemeral port reused within the
// conntrack timeout would find the earlier socket's entry (state
// ESTABLISHED), and its packets would rightly not race.
var portSeq atomic.Int32

func nextPort() int { return 20000 + int(portSeq.Add(1)) }

// udpSocket opens a UDP socket in netns connected to VIP:53, from a source
// port no other socket of this test binary used.
func udpSocket(t testing.TB, netns string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	local := &net.UDPAddr{IP: net.ParseIP(testVIP), Port: nextPort()}
	if err := inNetns(t, netns, func() (err error) {
		c, err = net.DialUDP("udp4", local, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(testVIP+":53")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answers reads answers on c until wait passes and returns the arrival time
// of each answered query id, measured from start.
func answers(c *net.UDPConn, start time.Time, wait time.Duration) map[uint16]time.Duration {
	got := map[uint16]time.Duration{}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return got
		}
		if n >= 2 {
			got[binary.BigEndian.Uint16(buf[0:2])] = time.Since(start)
		}
	}
}

// buildDirs are the temporary directories of built binaries, removed by TestMain.
var (
	buildDirsMu sync.Mutex
	buildDirs   []string
)

func buildDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		buildDirsMu.Lock()
		buildDirs = append(buildDirs, dir)
		buildDirsMu.Unlock()
	}
	return dir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range buildDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// agentBinary builds cmd/labagent once per test binary.
var agentBinary = sync.OnceValues(func() (string, error) {
	dir, err := buildDir("labagent-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "labagent")
	out, err := exec.Command("go", "build", "-o", bin, "labrun.dev/labrun/cmd/labagent").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build labagent: %v: %s", err, out)
	}
	return bin, nil
})

// runningAgent is a labagent process inside a test namespace.
type runningAgent struct {
	cmd     *exec.Cmd
	metrics string
	stdout  *bytes.Buffer
	stderr  *syncBuffer
	done    chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgent starts labagent in netns with args and waits until its rules are
// in place. A test that expects a failed start uses startAgentProcess.
func startAgent(t testing.TB, netns string, args ...string) *runningAgent {
	t.Helper()
	a := startAgentProcess(t, netns, args...)
	deadline := time.After(20 * time.Second)
	for !strings.Contains(a.stderr.String(), "labagent running") {
		select {
		case err := <-a.done:
			t.Fatalf("labagent exited before it was ready: %v\n%s", err, a.stderr.String())
		case <-deadline:
			t.Fatalf("labagent not ready after 20 s:\n%s", a.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return a
}

func startAgentProcess(t testing.TB, netns string, args ...string) *runningAgent {
	t.Helper()
	bin, err := agentBinary()
	if err != nil {
		t.Fatal(err)
	}
	a := &runningAgent{
		metrics: "unix:" + filepath.Join(t.TempDir(), "labagent.sock"),
		stdout:  &bytes.Buffer{}, stderr: &syncBuffer{}, done: make(chan error, 1),
	}
	argv := []string{"netns", "exec", netns, bin, "run", "--metrics-addr", a.metrics}
	if !slices.Contains(args, "--vip") {
		argv = append(argv, "--vip", testVIP)
	}
	argv = append(argv, args...)
	a.cmd = exec.Command("ip", argv...)
	a.cmd.Stdout, a.cmd.Stderr = a.stdout, a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop ends the agent with SIGTERM (if it still runs) and returns its exit error.
func (a *runningAgent) stop(t testing.TB) error {
	t.Helper()
	if a.cmd.ProcessState != nil {
		return nil
	}
	_ = a.cmd.Process.Signal(unix.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err // keep it for a later stop
		return err
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		t.Errorf("labagent ignored SIGTERM for 10 s:\n%s", a.stderr.String())
		return <-a.done
	}
}

// wait returns the agent's exit error once it has exited.
func (a *runningAgent) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("labagent still running after %v", timeout)
		return nil
	}
}

func (a *runningAgent) counters(t testing.TB) emulator.Snapshot {
	t.Helper()
	s, err := FetchCounters(a.metrics)
	if err != nil {
		t.Fatalf("%v\n%s", err, a.stderr.String())
	}
	return s
}

// rulesIn returns the lines of iptables-save in netns that are the agent's.
func rulesIn(t testing.TB, netns string) []string {
	t.Helper()
	var ours []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out := run(t, "ip", "netns", "exec", netns, save)
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if strings.Contains(sc.Text(), RuleComment) || strings.Contains(sc.Text(), chainName) {
				ours = append(ours, sc.Text())
			}
		}
	}
	return ours
}
