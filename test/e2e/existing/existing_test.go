//go:build e2e

package existing

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// scenarioYAML: the lab cluster's own shape (default: iptables, CoreDNS × 2,
// labnet, 2 workers) and one in nftables mode it does not match; names the
// cluster's DNS answers (kubernetes.default, the lab's Service by its short
// name) and one of the lab upstream (not run); bare and under the race
// emulator.
const scenarioYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: e2e-existing}
clusters:
  - name: default
    nodes: {controlPlanes: 1, workers: 2}
    kubeProxy: iptables
    dns: {server: coredns, replicas: 2}
  - name: nft
    nodes: {controlPlanes: 1, workers: 2}
    kubeProxy: nftables
workload:
  resolvers: [glibc, musl]
  mitigations: [none]
  names:
    - - {name: kubernetes.default, kind: short}
      - {name: labrun-target, kind: short}
    - - {name: api.lab.example, kind: external}
  load: {podsPerNode: 1, concurrency: 1, rate: 10/s, duration: 5s}
chaos:
  - {}
  - raceEmulator: {profile: "5.0-5.5", window: 1ms}
`

// binaries builds labrun once, and a PATH holding it with docker, kind and
// ctr as scripts that record any call into calls.
func binaries(t *testing.T) (labrun, path, calls string) {
	t.Helper()
	dir := t.TempDir()
	labrun = filepath.Join(dir, "labrun")
	build := exec.Command("go", "build", "-o", labrun, "../../../cmd/labrun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build labrun: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "bin")
	calls = filepath.Join(dir, "calls")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"docker", "kind", "ctr", "kubectl"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + calls + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// /bin and /usr/bin for the shell of those scripts only: neither holds
	// docker or kind on the test machine's PATH order, since bin comes first.
	return labrun, bin + ":/bin:/usr/bin", calls
}

// runLabrun runs the binary with args in dir and returns the run directory.
func runLabrun(ctx context.Context, t *testing.T, labrun, path, dir string, args ...string) (results.RunDir, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, labrun, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+path)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	t.Logf("labrun %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errs.String())
	entries, _ := filepath.Glob(filepath.Join(dir, "results", "e2e-existing-*"))
	if len(entries) == 0 {
		t.Fatalf("no run directory in %s", dir)
	}
	run, err := results.Open(entries[len(entries)-1])
	if err != nil {
		t.Fatal(err)
	}
	return run, errs.String()
}

func cells(t *testing.T, file string) []scenario.Cell {
	t.Helper()
	sc, err := scenario.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sc.Expand()
}

func nothingLeft(ctx context.Context, t *testing.T) {
	t.Helper()
	left, err := workload.Leftovers(ctx, suite.Clientset(), existing.LabelManaged+"=true")
	if err != nil || len(left) > 0 {
		t.Errorf("left in the cluster: %v %v", left, err)
	}
}

func TestE2EExisting(t *testing.T) {
	var labrun, path, calls, scenarioFile string
	f := features.New("labrun run on an existing cluster given by its kubeconfig").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			labrun, path, calls = binaries(t)
			scenarioFile = filepath.Join(t.TempDir(), "e2e-existing.yaml")
			if err := os.WriteFile(scenarioFile, []byte(scenarioYAML), 0o644); err != nil {
				t.Fatal(err)
			}
			return ctx
		}).
		Assess("without --allow-privileged: cells complete, counters not read, shape recorded, mismatch and emulator not run, nothing left, no docker or kind call", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Minute) // not returned: the next step gets ctx
			defer cancel()
			dir := t.TempDir()
			run, stderr := runLabrun(rctx, t, labrun, path, dir, "run", scenarioFile, "--kubeconfig", suite.Lab.Cluster.Kubeconfig)
			for _, c := range cells(t, scenarioFile) {
				st, ok, err := run.ReadStatus(c.ID)
				if err != nil || !ok {
					t.Errorf("%s: no status (%v)", c.ID, err)
					continue
				}
				switch {
				case c.Shape.Cluster.Name == "nft":
					if st.State != results.NotRun || !strings.Contains(st.Reason, "cluster runs kube-proxy iptables; the shape asks for nftables") {
						t.Errorf("%s: %s %q, want not run for the shape", c.ID, st.State, st.Reason)
					}
				case c.UnderEmulator(): // whatever its names: the first reason is the emulator
					if st.State != results.NotRun || !strings.Contains(st.Reason, "--allow-race-emulator") {
						t.Errorf("%s: %s %q, want the race emulator refused", c.ID, st.State, st.Reason)
					}
				case c.Names.Names[0].Kind == "external":
					if st.State != results.NotRun || !strings.Contains(st.Reason, "lab upstream") {
						t.Errorf("%s: %s %q, want not run for its names", c.ID, st.State, st.Reason)
					}
				default:
					if st.State != results.Complete || st.Collected == 0 {
						t.Errorf("%s: %s %q, %d lookups collected", c.ID, st.State, st.Reason, st.Collected)
					}
					counters, ok, err := run.ReadCounters(c.ID)
					if err != nil || !ok || len(counters.Nodes) != 0 || !strings.Contains(counters.NotRead, "needs --allow-privileged") {
						t.Errorf("%s: counters %+v (%v %v), want not read", c.ID, counters, ok, err)
					}
				}
			}
			env, _, err := run.ReadEnv()
			if err != nil {
				t.Fatal(err)
			}
			x := env.Extra
			if x["existing.kubeProxy"] != "iptables" || x["existing.dns"] != "coredns" || x["existing.dns.endpoints"] != "2" ||
				x["existing.podNetwork"] != "labnet" || env.Kubernetes == "" || env.Docker != "" {
				t.Errorf("env.json does not record the shape read: kubernetes %q, docker %q, extra %v", env.Kubernetes, env.Docker, x)
			}
			if !strings.Contains(stderr, "cleanup: nothing left") {
				t.Error("no final check printed")
			}
			nothingLeft(ctx, t)
			if b, _ := os.ReadFile(calls); len(b) > 0 {
				t.Errorf("docker, kind, ctr or kubectl called:\n%s", b)
			}
			return ctx
		}).
		Assess("with --allow-privileged: counters read, race emulator still refused, nothing left", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
			defer cancel()
			dir := t.TempDir()
			run, _ := runLabrun(rctx, t, labrun, path, dir, "run", scenarioFile, "--kubeconfig", suite.Lab.Cluster.Kubeconfig, "--allow-privileged")
			for _, c := range cells(t, scenarioFile) {
				if c.Shape.Cluster.Name != "default" || c.Names.Names[0].Kind == "external" {
					continue
				}
				st, _, _ := run.ReadStatus(c.ID)
				if c.UnderEmulator() {
					if st.State != results.NotRun || !strings.Contains(st.Reason, "--allow-race-emulator") {
						t.Errorf("%s: %s %q, want the race emulator refused", c.ID, st.State, st.Reason)
					}
					continue
				}
				if st.State != results.Complete {
					t.Errorf("%s: %s %q", c.ID, st.State, st.Reason)
				}
				counters, ok, err := run.ReadCounters(c.ID)
				if err != nil || !ok || counters.NotRead != "" || len(counters.Nodes) != 2 {
					t.Errorf("%s: counters %+v (%v %v), want both workers read", c.ID, counters, ok, err)
				}
			}
			nothingLeft(ctx, t)
			if b, _ := os.ReadFile(calls); len(b) > 0 {
				t.Errorf("docker, kind, ctr or kubectl called:\n%s", b)
			}
			return ctx
		}).
		Assess("with --allow-race-emulator too: the emulator runs on the probed nodes, glibc's lookups wait 5 s, nothing left", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
			defer cancel()
			dir := t.TempDir()
			run, stderr := runLabrun(rctx, t, labrun, path, dir, "run", scenarioFile, "--kubeconfig", suite.Lab.Cluster.Kubeconfig, "--allow-privileged", "--allow-race-emulator")
			for _, c := range cells(t, scenarioFile) {
				if c.Shape.Cluster.Name != "default" || c.Names.Names[0].Kind == "external" {
					continue
				}
				if st, _, _ := run.ReadStatus(c.ID); st.State != results.Complete {
					t.Errorf("%s: %s %q", c.ID, st.State, st.Reason)
				}
			}
			// The cell's result line: "…: complete, N lookups …, D ≥ 4.5 s, …, emulator dropped +E".
			line := regexp.MustCompile(`default_glibc_none_short_emu-5\.0-5\.5: complete, .* (\d+) ≥ 4\.5 s, .*emulator dropped \+(\d+)`).FindStringSubmatch(stderr)
			if line == nil || line[1] == "0" || line[2] == "0" {
				t.Errorf("glibc under the emulator: want delayed lookups and drops, got %q", line)
			}
			nothingLeft(ctx, t)
			if b, _ := os.ReadFile(calls); len(b) > 0 {
				t.Errorf("docker, kind, ctr or kubectl called:\n%s", b)
			}
			return ctx
		}).
		Assess("labrun clean --kubeconfig sweeps what a killed run left", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := suite.Clientset()
			ns := existing.Namespace("killed-run")
			obj := existingNamespace(ns)
			if _, err := cs.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, labrun, "clean", "--kubeconfig", suite.Lab.Cluster.Kubeconfig)
			cmd.Env = append(os.Environ(), "PATH="+path)
			out, err := cmd.CombinedOutput()
			t.Logf("labrun clean --kubeconfig: %v\n%s", err, out)
			if err != nil || !strings.Contains(string(out), "nothing left") {
				t.Errorf("clean: %v", err)
			}
			nothingLeft(ctx, t)
			return ctx
		}).
		Feature()
	suite.Env.Test(t, f)
}
