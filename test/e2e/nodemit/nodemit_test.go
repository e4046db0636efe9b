//go:build e2e

package nodemit

import (
	"context"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const prefix = "labrun-e2enm"

func TestE2ENodeMitigations(t *testing.T) {
	var run *e2ekit.Run
	f := features.New("delay-aaaa, random-fully and arp-gc on kind").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// Registered before RunScenario's Keep, so it runs after the
			// clusters are deleted (cleanups run last in, first out).
			t.Cleanup(func() {
				// With no lab cluster left, the host's thresholds are back.
				if left, err := kind.New(os.Stderr).List(context.Background()); err == nil && len(left) == 0 {
					for _, kv := range addons.ARPThresholds {
						if b, _ := os.ReadFile("/proc/sys/" + kv[0]); strings.TrimSpace(string(b)) == kv[1] {
							t.Errorf("host %s still %s after the last lab cluster was deleted", kv[0], kv[1])
						}
					}
				}
			})
			// Kept, to look at the nodes; deleted when the test ends,
			// whatever happened.
			run = e2ekit.RunScenario(ctx, t, "testdata/node-mitigations.yaml", prefix)
			return ctx
		}).
		Assess("claims 1, 6, 7 and 10 pass", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			s := run.Summary
			want := map[int]analyze.Verdict{1: analyze.Pass, 6: analyze.Pass, 7: analyze.Pass, 10: analyze.Pass}
			for _, c := range s.Claims {
				if w, ok := want[c.N]; ok && c.Verdict != w {
					t.Errorf("claim %d: %s, want %s: %s", c.N, c.Verdict, w, c.Evidence)
				} else if ok {
					t.Logf("claim %d: %s: %s", c.N, c.Verdict, c.Evidence)
				}
			}
			if s.Totals.Cells[results.Complete] != 3 {
				t.Errorf("cells by state %v, want 3 complete", s.Totals.Cells)
			}
			return ctx
		}).
		Assess("random-fully is on every masquerade rule of every node, arp-gc's thresholds on the host", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := run.Cluster(t, "default+arp-gc+random-fully")
			for _, n := range c.Nodes {
				out, err := c.Exec(ctx, n.Name, "iptables-save", "-t", "nat")
				if err != nil {
					t.Fatal(err)
				}
				masq := 0
				for _, l := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j MASQUERADE") {
						masq++
						if !strings.Contains(l, "--random-fully") {
							t.Errorf("node %s: %s", n.Name, l)
						}
					}
				}
				if !strings.Contains(string(out), "labnet: masquerade") || masq < 2 {
					t.Errorf("node %s: %d MASQUERADE rules, want labnet's and kube-proxy's:\n%s", n.Name, masq, out)
				}
			}
			for _, kv := range addons.ARPThresholds {
				b, err := os.ReadFile("/proc/sys/" + kv[0])
				if err != nil || strings.TrimSpace(string(b)) != kv[1] {
					t.Errorf("host %s = %q (%v), want %s", kv[0], b, err, kv[1])
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
