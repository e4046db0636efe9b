package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hostNAT is the host namespace's nat table, to prove the lab never touches it.
func hostNAT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save on the host: %v: %s", err, out)
	}
	return string(out)
}

// TestIntegrationLab builds a lab, resolves through the VIP from a client
// namespace with a new socket per query (so the random DNAT spreads them over
// both servers), and checks everything is gone after Close.
func TestIntegrationLab(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root and network namespaces; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Require(); err != nil {
		t.Fatalf("%v", err)
	}
	var lab *Lab
	t.Run("build and use", func(t *testing.T) {
		lab = ForTest(t, ctx, Config{Clients: []string{"", "nameserver " + VIP + "\noptions single-request-reopen\n"}})
		if len(lab.Clients) != 2 || len(lab.Servers) != 2 {
			t.Fatalf("lab %+v", lab)
		}
		const n = 40
		err := lab.Do(lab.Clients[0], func() error {
			c := &dns.Client{Timeout: 2 * time.Second}
			for i := 0; i < n; i++ {
				m := new(dns.Msg)
				m.SetQuestion("api.lab.example.", dns.TypeA)
				r, _, err := c.Exchange(m, net.JoinHostPort(VIP, "53"))
				if err != nil {
					return err
				}
				if len(r.Answer) != 1 {
					t.Errorf("answer %v", r)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("resolve through the VIP: %v", err)
		}
		q0, q1 := lab.DNS[0].Handler.Queries(), lab.DNS[1].Handler.Queries()
		if q0+q1 != n || q0 == 0 || q1 == 0 {
			t.Errorf("servers answered %d and %d of %d queries: want both > 0 (random DNAT)", q0, q1, n)
		}
		out, err := lab.Run(ctx, lab.Clients[1], "cat", "/etc/resolv.conf")
		if err != nil || !strings.Contains(string(out), "single-request-reopen") {
			t.Errorf("client 1 sees resolv.conf %q (%v), want its own", out, err)
		}
		stat, err := lab.ConntrackStat(lab.Router)
		if err != nil || !strings.Contains(stat, "clashres") && !strings.Contains(stat, "insert_failed") {
			t.Errorf("router conntrack stat %q: %v", stat, err)
		}
		rules, err := lab.Run(ctx, lab.Router, "iptables-save", "-t", "nat")
		if err != nil || !strings.Contains(string(rules), "--mode random --probability 0.5") {
			t.Errorf("router rules %s: %v", rules, err)
		}
		if strings.Contains(hostNAT(t), "LAB-SVC-DNS") {
			t.Errorf("the lab's rules leaked into the host's nat table")
		}
	})
	if lab == nil {
		return
	}
	if left := Leftovers(lab.Prefix); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), lab.Prefix+"-") {
		t.Errorf("ip netns list still shows the lab:\n%s", out)
	}
}

// TestIntegrationRemoveStale: a lab left by a process that died is removed;
// one of a live process is not.
func TestIntegrationRemoveStale(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root and network namespaces; skipped with -short")
	}
	if err := Require(); err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A process that has exited: its PID names the stale lab.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("lr-%d-1-r", dead.Process.Pid)
	live := fmt.Sprintf("lr-%d-1-r", os.Getppid()) // the go command: alive
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		if err := os.MkdirAll(filepath.Join("/etc/netns", ns), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, ns := range []string{stale, live} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
			_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
		}
		_ = os.Remove("/etc/netns")
	})
	if err := RemoveStale(ctx); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(strings.TrimSuffix(stale, "-1-r")); len(left) > 0 {
		t.Errorf("stale lab not removed: %v", left)
	}
	if left := Leftovers(strings.TrimSuffix(live, "-1-r")); len(left) != 2 {
		t.Errorf("live lab: %v left, want its namespace and /etc/netns dir untouched", left)
	}
}
