package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, args)
	return out.String(), err
}

func TestValidateAndPlan(t *testing.T) {
	out, err := runCLI(t, "validate", "../../scenarios/baseline.yaml", "../../scenarios/grpc.yaml")
	if err != nil || !strings.Contains(out, "baseline.yaml: ok: 4 cells (4 will run)") {
		t.Errorf("validate: %v\n%s", err, out)
	}
	_, err = runCLI(t, "validate", "../../pkg/scenario/testdata/invalid-values.yaml", "../../scenarios/baseline.yaml")
	if ExitCode(context.Background(), err) != 2 || !strings.Contains(err.Error(), "invalid-values.yaml:28: repeats: 0 is out of range") {
		t.Errorf("validate of a bad file: exit %d, %v", ExitCode(context.Background(), err), err)
	}
	// Problems that do not decode and problems that do not validate, of two
	// files, together; a header line, then one FILE:LINE line each.
	_, err = runCLI(t, "validate", "../../pkg/scenario/testdata/invalid-mixed.yaml", "../../scenarios/baseline.yaml", "../../pkg/scenario/testdata/invalid-nan.yaml")
	lines := strings.Split(fmt.Sprint(err), "\n")
	if ExitCode(context.Background(), err) != 2 || lines[0] != "2 scenario files do not load:" || len(lines) != 1+13+5 {
		t.Fatalf("validate of two bad files: exit %d, %d lines:\n%v", ExitCode(context.Background(), err), len(lines), err)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "../../pkg/scenario/testdata/invalid-") {
			t.Errorf("problem line %q does not start with its file", l)
		}
	}
	for _, want := range []string{"invalid-mixed.yaml:1: colour: unknown field", `invalid-mixed.yaml:14: workload.mitigations[1]: unknown mitigation "single-request-reopn"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate lacks %q:\n%v", want, err)
		}
	}
	out, err = runCLI(t, "plan", "../../scenarios/baseline.yaml")
	for _, want := range []string{"4 will run, 0 not run; estimated wall time", "default_musl_single-request-reopen", "musl ignores single-request-reopen"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("plan lacks %q: %v\n%s", want, err, out)
		}
	}
	if _, err := runCLI(t, "plan", "absent.yaml"); ExitCode(context.Background(), err) != 2 {
		t.Errorf("plan of a missing file: exit %d", ExitCode(context.Background(), err))
	}
}

func TestPlanNotRun(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(f, []byte("apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nclusters: [{name: v, kubeProxy: ipvs}]\nworkload: {resolvers: [glibc], mitigations: [none, grpc-native]}\n"), 0o644)
	out, err := runCLI(t, "plan", f)
	if err != nil || !strings.Contains(out, "0 will run, 2 not run") || !strings.Contains(out, "not run: not applicable: grpc-native on glibc") ||
		!strings.Contains(out, "not run: kubeProxy ipvs") {
		t.Errorf("plan: %v\n%s", err, out)
	}
}

// cellsAtOnce: the plan says, per cluster, how many cells run at once on how
// many workers, or why one at a time; its estimate counts the lanes.
func TestPlanCellsAtOnce(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(f, []byte("apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nclusters: [{name: a}, {name: k, podNetwork: kube-router}]\nworkload: {resolvers: [glibc, musl], mitigations: [none, use-vc], load: {duration: 30s}}\ncellsAtOnce: 2\n"), 0o644)
	out, err := runCLI(t, "plan", f)
	if err != nil || !strings.Contains(out, "cluster a: ") || !strings.Contains(out, "; 2 cells at once, on 4 workers\n") ||
		!strings.Contains(out, "; one cell at a time: pod network kube-router: ") ||
		!strings.Contains(out, "estimated wall time 6m50s") { // 2 clusters × 70 s + a: 4 × 45 s / 2 + k: 4 × 45 s = 410 s
		t.Errorf("plan: %v\n%s", err, out)
	}
}

func TestReportFromDisk(t *testing.T) {
	run, err := resultstest.WriteRun(t.TempDir(), "run", "apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nworkload: {mitigations: [none, use-vc]}\nchaos: {raceEmulator: {}}\n",
		func(c scenario.Cell) (resultstest.Cell, bool) {
			cs := resultstest.Cell{Lookups: 1000}
			if c.Mitigations.IsNone() {
				cs.Delayed, cs.EmulatorDropped = 0.05, 50
			}
			return cs, true
		})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "report", run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"claim  1: pass", "claim  2: pass", "claim  7: pass", "2 cells: 2 complete", run.IndexPath()} {
		if !strings.Contains(out, want) {
			t.Errorf("report output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(run.SummaryPath()); err != nil {
		t.Error(err)
	}
	if _, err := runCLI(t, "report", filepath.Join(t.TempDir(), "none")); ExitCode(context.Background(), err) != 2 {
		t.Errorf("report of a missing directory: exit %d", ExitCode(context.Background(), err))
	}
}

// Seed 004's JVM scenario: validate and plan accept it; plan names the dotnet
// back end as not run, with the reason.
func TestPlanCodacyJVM(t *testing.T) {
	out, err := runCLI(t, "validate", "../../scenarios/codacy-jvm.yaml")
	if err != nil || !strings.Contains(out, "codacy-jvm.yaml: ok: 15 cells (10 will run)") {
		t.Errorf("validate: %v\n%s", err, out)
	}
	out, err = runCLI(t, "plan", "../../scenarios/codacy-jvm.yaml")
	for _, want := range []string{
		"jvm_jvm-nocache_single-request-reopen  jvm-nocache  single-request-reopen",
		"jvm+nodelocaldns_jvm_nodelocaldns",
		"jvm_dotnet_none                        dotnet       none                   p2c2r10d12s  emu-5.0-5.5  not run: back end dotnet not available: neither Debian nor the registries these machines reach serve a .NET runtime",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("plan lacks %q: %v\n%s", want, err, out)
		}
	}
}

func TestRunClusterPrefixChecked(t *testing.T) {
	for _, bad := range []string{"JVM", "-jvm", "a_b", "a-very-long-prefix-of-many-words"} {
		_, err := runCLI(t, "run", "../../scenarios/codacy-jvm.yaml", "--cluster-prefix", bad)
		if ExitCode(context.Background(), err) != 2 || !strings.Contains(fmt.Sprint(err), "--cluster-prefix") {
			t.Errorf("--cluster-prefix %q: exit %d, %v", bad, ExitCode(context.Background(), err), err)
		}
	}
}
