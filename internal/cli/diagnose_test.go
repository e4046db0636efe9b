package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/diagnose"
)

// kubeconfigFor writes a kubeconfig whose one context points at server.
func kubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDiagnoseExitCodes(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	good := kubeconfigFor(t, down.URL)
	for _, tc := range []struct {
		name string
		args []string
		want int
		says string
	}{
		{"negative duration", []string{"--kubeconfig", good, "--duration", "-1s"}, ExitUsage, "--duration -1s"},
		{"a load test", []string{"--kubeconfig", good, "--duration", "10m"}, ExitUsage, "up to 2m0s"},
		{"rate too high", []string{"--kubeconfig", good, "--rate", "500"}, ExitUsage, "at most 50"},
		{"no nodes", []string{"--kubeconfig", good, "--nodes", "0"}, ExitUsage, "--nodes 0"},
		{"bad pull policy", []string{"--kubeconfig", good, "--pull-policy", "Sometimes"}, ExitUsage, "IfNotPresent"},
		{"unknown flag", []string{"--bogus"}, ExitUsage, "unknown flag"},
		{"an argument", []string{"cluster-x"}, ExitUsage, "unknown command"},
		{"kubeconfig missing", []string{"--kubeconfig", filepath.Join(t.TempDir(), "absent")}, ExitUsage, "kubeconfig"},
		{"context missing", []string{"--kubeconfig", good, "--context", "nope"}, ExitUsage, `context "nope" does not exist`},
		{"API server down", []string{"--kubeconfig", good, "--duration", "0"}, ExitError, "reach the API server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			ctx := context.Background()
			err := Run(ctx, Streams{Out: &out, Err: &errs}, append([]string{"diagnose"}, tc.args...))
			if got := ExitCode(ctx, err); got != tc.want {
				t.Errorf("exit %d, want %d (err %v)", got, tc.want, err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v does not say %q", err, tc.says)
			}
		})
	}
}

func TestWriteDiagnosisJSON(t *testing.T) {
	r := &diagnose.Report{ID: "ab12", Facts: diagnose.Facts{Kubernetes: "v1.36.1"},
		Access:     diagnose.Access{Tier: diagnose.TierProbes, Wanted: diagnose.TierCounters},
		Prediction: diagnose.Prediction{Verdict: diagnose.PredictUnknown}, Skipped: "no probe image",
		Verdict: diagnose.Verdict{Verdict: "unknown (not measured)"}}
	var out bytes.Buffer
	if err := writeDiagnosis(Streams{Out: &out}, r, true); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	access := back["access"].(map[string]any)
	if back["id"] != "ab12" || access["tier"] != "probe pods" || access["wanted"] != "node counters" || back["measurementSkipped"] != "no probe image" {
		t.Errorf("JSON: %s", out.String())
	}
	out.Reset()
	if err := writeDiagnosis(Streams{Out: &out}, r, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "MEASUREMENT  skipped: no probe image") {
		t.Errorf("text: %s", out.String())
	}
}
