//go:build e2e

package reuse

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const (
	scenarioFile = "testdata/family.yaml"
	prefixShared = "labrun-e2eru"   // the family on one cluster
	prefixOwn    = "labrun-e2erown" // each shape on its own (kept)
)

// creating is a provider that remembers the clusters it was asked to make.
type creating struct {
	cluster.Provider
	mu   sync.Mutex
	made []string
}

func (p *creating) Create(ctx context.Context, s cluster.Spec) (*cluster.Cluster, error) {
	p.mu.Lock()
	p.made = append(p.made, s.Name)
	p.mu.Unlock()
	return p.Provider.Create(ctx, s)
}

// passing are the claims a run's summary says pass.
func passing(s report.Summary) []int {
	var out []int
	for _, c := range s.Claims {
		if c.Verdict == analyze.Pass {
			out = append(out, c.N)
		}
	}
	return out
}

func TestE2EFamilyOnOneCluster(t *testing.T) {
	var (
		p      *creating
		shared report.Summary
		env    results.Env
		own    *e2ekit.Run
	)
	f := features.New("a family of shapes on one kind cluster, against each shape on its own").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			e2ekit.Keep(t, prefixShared)
			p = &creating{Provider: kind.New(os.Stderr)}
			res, err := lab.Run(ctx, lab.RunOptions{Scenario: scenarioFile, ResultsDir: t.TempDir(),
				ClusterPrefix: prefixShared, Provider: p, Progress: os.Stderr})
			if err != nil {
				t.Fatalf("lab.Run %s on one cluster: %v", scenarioFile, err)
			}
			if err := results.ReadJSON(res.Run.SummaryPath(), &shared); err != nil {
				t.Fatal(err)
			}
			var ok bool
			if env, ok, err = res.Run.ReadEnv(); err != nil || !ok {
				t.Fatalf("env.json: %v %v", ok, err)
			}
			// The same scenario, each shape on a cluster of its own (kept:
			// --retain gives each shape its own).
			own = e2ekit.RunScenario(ctx, t, scenarioFile, prefixOwn)
			return ctx
		}).
		Assess("one cluster served the three shapes; env.json says which cluster each reused and that each reset was checked", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			host := lab.ClusterName(prefixShared, "default")
			if !slices.Equal(p.made, []string{host}) {
				t.Errorf("clusters made %v, want only %s", p.made, host)
			}
			for _, shape := range []string{"default+autopath", "default+arp-gc+random-fully"} {
				name := lab.ClusterName(prefixShared, shape)
				if got := env.Extra[name+".reusedFrom"]; got != host {
					t.Errorf("env.json %s.reusedFrom = %q, want %s", name, got, host)
				}
			}
			name := lab.ClusterName(prefixShared, "default+arp-gc+random-fully") // the last shape's is not undone: the cluster goes
			if got := env.Extra[name+".reset"]; !strings.HasSuffix(got, "the plain cluster again") {
				t.Errorf("env.json %s.reset = %q (resetFailed %q)", name, got, env.Extra[name+".resetFailed"])
			}
			if left, err := kind.New(os.Stderr).List(ctx); err != nil || slices.Contains(left, host) {
				t.Errorf("clusters left %v (%v): the run deletes its cluster", left, err)
			}
			return ctx
		}).
		Assess("every cell complete in both runs, and the same claims pass (1, 9 and 10 among them)", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for name, s := range map[string]report.Summary{"one cluster": shared, "a cluster each": own.Summary} {
				if s.Totals.Cells[results.Complete] != 3 {
					t.Errorf("%s: cells by state %v, want 3 complete", name, s.Totals.Cells)
				}
				for _, c := range s.Cells {
					if c.Stats != nil {
						t.Logf("%s: cell %s: %d lookups, %.0f%% at ≥ 5 s, p50 %.1f ms", name, c.ID, c.Stats.Count, 100*c.Stats.ShareAtLeast5s, c.Stats.P50MS)
					}
				}
				for _, c := range s.Claims {
					t.Logf("%s: claim %d: %s: %s", name, c.N, c.Verdict, c.Evidence)
				}
			}
			a, b := passing(shared), passing(own.Summary)
			if !slices.Equal(a, b) {
				t.Errorf("claims passing: on one cluster %v, on a cluster each %v", a, b)
			}
			for _, n := range []int{1, 9, 10} {
				if !slices.Contains(a, n) {
					t.Errorf("claim %d does not pass on one cluster (passing: %v)", n, a)
				}
			}
			return ctx
		}).
		Assess("each undoable mitigation changes the cluster's state and its undo returns it; a rule added by hand is found", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := own.Cluster(t, "default")
			// The kept arp-gc shape raised the host's thresholds: one lower
			// each, so that arp-gc's set-up changes them (the last lab
			// cluster's deletion restores what the lab recorded first).
			for _, kv := range addons.ARPThresholds {
				n, _ := strconv.Atoi(kv[1])
				if _, err := cluster.SetHostSysctl(kv[0], strconv.Itoa(n-1)); err != nil {
					t.Fatal(err)
				}
			}
			plain, err := cluster.ReadState(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range addons.Undoable {
				undo, err := addons.SetUpUndoable(ctx, addons.Env{Cluster: c, Progress: os.Stderr}, m)
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				with, err := cluster.ReadState(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s set up: %s", m, strings.Join(with.Diff(plain), "; "))
				if len(with.Diff(plain)) == 0 {
					t.Errorf("%s set up: the state is the plain cluster's", m)
				}
				if err := undo(ctx); err != nil {
					t.Fatalf("undo %s: %v", m, err)
				}
				after, err := cluster.ReadState(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				if d := after.Diff(plain); d != nil {
					t.Errorf("%s undone: differs from the plain cluster: %s", m, strings.Join(d, "; "))
				}
			}
			worker := c.Workers()[0].Name
			rule := []string{"-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport", "53", "-m", "comment", "--comment", "labrun e2e: by hand", "-j", "ACCEPT"}
			if _, err := c.Exec(ctx, worker, append([]string{"iptables"}, rule...)...); err != nil {
				t.Fatal(err)
			}
			now, err := cluster.ReadState(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			d := now.Diff(plain)
			if len(d) != 1 || !strings.HasPrefix(d[0], "rules of "+worker+":") || !strings.Contains(d[0], "by hand") {
				t.Errorf("a rule added by hand on %s: diff %q, want that node's rules only, naming the rule", worker, d)
			}
			rule[2] = "-D"
			if _, err := c.Exec(ctx, worker, append([]string{"iptables"}, rule...)...); err != nil {
				t.Fatal(err)
			}
			if now, err = cluster.ReadState(ctx, c); err != nil || now.Diff(plain) != nil {
				t.Errorf("the rule removed: diff %q (%v)", now.Diff(plain), err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
