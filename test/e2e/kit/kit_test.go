//go:build e2e

package kit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const (
	// broken names the broken suite's cluster (and its Keep prefix).
	broken = "labrun-e2e-broken"
	// brokenEnv set to 1 lets TestE2EBrokenSetup run.
	brokenEnv = "LABRUN_E2E_BROKEN_SETUP"
	// brokenMsg is how the broken suite's Setup fails.
	brokenMsg = "setup broken on purpose"
)

// TestE2EBrokenSetup is the broken suite: a feature whose Setup registers
// its cleanup (e2ekit.Keep), brings a real lab cluster up, raises the host's
// ARP thresholds as the arp-gc mitigation does, then fails. It runs only in
// the subprocess TestE2EFailedSetupLeavesNothing starts.
func TestE2EBrokenSetup(t *testing.T) {
	if os.Getenv(brokenEnv) != "1" {
		t.Skipf("the suite TestE2EFailedSetupLeavesNothing runs in a subprocess (with %s=1): its Setup fails on purpose", brokenEnv)
	}
	f := features.New("a Setup that fails after making a cluster and raising host sysctls").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			e2ekit.Keep(t, broken)
			if _, err := lab.Up(ctx, lab.UpOptions{Name: broken, Progress: os.Stderr}); err != nil {
				t.Fatalf("lab.Up: %v", err)
			}
			for _, kv := range addons.ARPThresholds {
				old, err := cluster.SetHostSysctl(kv[0], kv[1])
				if err != nil {
					t.Fatalf("raise host %s: %v", kv[0], err)
				}
				t.Logf("host %s: %s -> %s", kv[0], old, kv[1])
			}
			t.Fatal(brokenMsg)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestE2EFailedSetupLeavesNothing(t *testing.T) {
	var before host
	f := features.New("a suite whose Setup fails leaves nothing behind").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			left, err := kind.New(os.Stderr).List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				// The host sysctls come back only with the last lab cluster.
				t.Fatalf("lab clusters %v are up: this test needs none (labrun clean deletes them)", left)
			}
			before = readHost(t)
			t.Logf("before: network namespaces %v, %d containers, sysctls %v", before.netns, len(before.containers), before.sysctls)
			// Should the broken suite leak, nothing is left for the next
			// suite: its clusters go (Keep), then the host's thresholds are
			// put back (registered first, so it runs last).
			t.Cleanup(func() { restoreSysctls(t, before.sysctls) })
			e2ekit.Keep(t, broken)
			return ctx
		}).
		Assess("the broken suite fails in its Setup", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, "go", "test", "-tags", "e2e", "-count=1", "-timeout", "30m",
				"-run", "^TestE2EBrokenSetup$", "-v", ".")
			cmd.Env = append(os.Environ(), brokenEnv+"=1")
			// Its lines are prefixed: its own "--- FAIL" is expected, and
			// must not read as this run's failure to whoever scans the log.
			cmd.Stdout = io.MultiWriter(&prefixed{w: os.Stderr, prefix: "broken suite | "}, &out)
			cmd.Stderr = cmd.Stdout
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case err == nil:
				t.Errorf("the broken suite passed: want it to fail")
			case !errors.As(err, &exit):
				t.Errorf("run the broken suite: %v", err)
			default:
				t.Logf("the broken suite failed: %v", err)
			}
			if !strings.Contains(out.String(), brokenMsg) {
				t.Errorf("the broken suite's output lacks %q: it failed elsewhere (its output is above)", brokenMsg)
			}
			return ctx
		}).
		Assess("no cluster, container, network namespace or raised sysctl is left", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			left, err := kind.New(os.Stderr).List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(left, broken) {
				t.Errorf("cluster %s left", broken)
			}
			if ids := docker(t, "ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster="+broken); len(ids) > 0 {
				t.Errorf("containers of cluster %s left: %v", broken, ids)
			}
			if _, err := os.Stat(cluster.KubeconfigPath(broken)); err == nil {
				t.Errorf("kubeconfig %s left", cluster.KubeconfigPath(broken))
			}
			after := readHost(t)
			if added, gone := diff(before.netns, after.netns); len(added)+len(gone) > 0 {
				t.Errorf("network namespaces: %v new, %v gone", added, gone)
			}
			if added, gone := diff(before.containers, after.containers); len(added)+len(gone) > 0 {
				t.Errorf("containers: %v new, %v gone", added, gone)
			}
			for _, kv := range addons.ARPThresholds {
				if b, a := before.sysctls[kv[0]], after.sysctls[kv[0]]; a != b {
					t.Errorf("host %s = %s, was %s before the broken suite", kv[0], a, b)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// prefixed writes each line to w after prefix.
type prefixed struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixed) Write(b []byte) (int, error) {
	var buf bytes.Buffer
	for _, c := range b {
		if !p.midLine {
			buf.WriteString(p.prefix)
		}
		buf.WriteByte(c)
		p.midLine = c != '\n'
	}
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// host is what a suite could leave on the host.
type host struct {
	netns      []string          // ip netns list
	containers []string          // docker ps -aq
	sysctls    map[string]string // addons.ARPThresholds' keys
}

func readHost(t *testing.T) host {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var h host
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 { // "name (id: 3)"
			h.netns = append(h.netns, f[0])
		}
	}
	h.containers = docker(t, "ps", "-aq")
	h.sysctls = map[string]string{}
	for _, kv := range addons.ARPThresholds {
		b, err := os.ReadFile("/proc/sys/" + kv[0])
		if err != nil {
			t.Fatal(err)
		}
		h.sysctls[kv[0]] = strings.TrimSpace(string(b))
	}
	return h
}

// docker runs docker and returns its output's fields.
func docker(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = errors.Join(err, errors.New(strings.TrimSpace(string(exit.Stderr))))
		}
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// diff returns what is in after and not before, and the reverse.
func diff(before, after []string) (added, gone []string) {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	b, a := in(before), in(after)
	for x := range a {
		if !b[x] {
			added = append(added, x)
		}
	}
	for x := range b {
		if !a[x] {
			gone = append(gone, x)
		}
	}
	slices.Sort(added)
	slices.Sort(gone)
	return added, gone
}

// restoreSysctls writes back the host sysctls that differ from vals, lowest
// threshold first (the kernel wants gc_thresh1 ≤ gc_thresh2 ≤ gc_thresh3;
// addons.ARPThresholds lists the highest first).
func restoreSysctls(t *testing.T, vals map[string]string) {
	for i := len(addons.ARPThresholds) - 1; i >= 0; i-- {
		k := addons.ARPThresholds[i][0]
		want, ok := vals[k]
		if !ok {
			continue
		}
		b, err := os.ReadFile("/proc/sys/" + k)
		if err == nil && strings.TrimSpace(string(b)) == want {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+k, []byte(want), 0o644); err != nil {
			t.Errorf("restore host %s = %s: %v", k, want, err)
			continue
		}
		t.Logf("host %s restored to %s (left by the broken suite)", k, want)
	}
}
