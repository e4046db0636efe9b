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
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
)

const prefix = "labrun-e2enm"

type runKey struct{}

func TestE2ENodeMitigations(t *testing.T) {
	plain, mitigated := lab.ClusterName(prefix, "default"), lab.ClusterName(prefix, "default+arp-gc+random-fully")
	f := features.New("delay-aaaa, random-fully and arp-gc on kind").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// Kept, to look at the nodes; deleted in Teardown.
			res, err := lab.Run(ctx, lab.RunOptions{
				Scenario: "testdata/node-mitigations.yaml", ResultsDir: t.TempDir(),
				Retain: true, ClusterPrefix: prefix, Progress: os.Stderr,
			})
			if err != nil {
				t.Fatalf("lab.Run: %v", err)
			}
			return context.WithValue(ctx, runKey{}, res)
		}).
		Assess("claims 1, 6, 7 and 10 pass", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res := ctx.Value(runKey{}).(*lab.RunResult)
			var s report.Summary
			if err := results.ReadJSON(res.Run.SummaryPath(), &s); err != nil {
				t.Fatal(err)
			}
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
			c, err := cluster.NewKind(os.Stderr).Get(ctx, mitigated)
			if err != nil {
				t.Fatal(err)
			}
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
		}).
		Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, name := range []string{plain, mitigated} {
				if err := lab.Down(context.WithoutCancel(ctx), name, os.Stderr); err != nil {
					t.Errorf("delete %s: %v", name, err)
				}
			}
			// With no lab cluster left, the host's thresholds are back.
			if left, err := cluster.NewKind(os.Stderr).List(); err == nil && len(left) == 0 {
				for _, kv := range addons.ARPThresholds {
					if b, _ := os.ReadFile("/proc/sys/" + kv[0]); strings.TrimSpace(string(b)) == kv[1] {
						t.Errorf("host %s still %s after the last lab cluster was deleted", kv[0], kv[1])
					}
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
