package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRunFactsOnly(t *testing.T) {
	s := newAPIServer(t)
	rbac(s.cs)
	r, err := Run(context.Background(), s.cs, Options{ID: "f1", Wanted: TierFacts, Load: DefaultLoad})
	if err != nil {
		t.Fatal(err)
	}
	if r.Measurement != nil || r.Skipped != "not asked for (--duration 0)" || s.created.Load() != 0 {
		t.Errorf("facts only: %+v", r)
	}
	if r.Verdict.Verdict != PredictNotAffected+" (not measured)" {
		t.Errorf("verdict %q", r.Verdict.Verdict)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FACTS", "node labrun-worker", "kernel 6.18", "iptables (ConfigMap kube-system/kube-proxy key config.conf)", "VIP 10.96.0.10, 2 ready endpoint(s)", "forward . → 10.96.53.53",
		"labnet (kube-system/labnet)", "ACCESS  facts (read-only) (asked for: facts (read-only))", "PREDICTION  predicted not affected",
		"MEASUREMENT  skipped: not asked for", "VERDICT  predicted not affected (not measured)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRunReadOnlyRole(t *testing.T) {
	s := newAPIServer(t)
	rbac(s.cs, "create namespaces", "create pods")
	r, err := Run(context.Background(), s.cs, Options{ID: "f2", Wanted: TierCounters, Load: DefaultLoad})
	if err != nil {
		t.Fatal(err)
	}
	if r.Measurement != nil || !strings.Contains(r.Skipped, "not allowed: probe pods: create namespaces") || s.created.Load() != 0 {
		t.Errorf("read-only: skipped %q, created %d", r.Skipped, s.created.Load())
	}
}

func TestRunMeasuresWithLabImages(t *testing.T) {
	s := newAPIServer(t)
	rbac(s.cs)
	var progress bytes.Buffer
	r, err := Run(context.Background(), s.cs, Options{ID: "f3", Wanted: TierProbes, Load: DefaultLoad, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if r.Measurement == nil || len(r.Measurement.Bursts) == 0 {
		t.Fatalf("no measurement: skipped %q", r.Skipped)
	}
	// The images were found on the nodes.
	for _, img := range s.images() {
		if img != "labrun/probe-glibc:4f1c2a9e0b7d" && img != "labrun/probe-musl:9a8b7c6d5e4f" {
			t.Errorf("a pod ran image %q", img)
		}
	}
	if !strings.Contains(progress.String(), "cleanup: nothing left") {
		t.Errorf("progress: %s", progress.String())
	}
	// The fake's logs are not a probe's: inconclusive, never "not affected".
	if r.Verdict.Verdict != VerdictInconclusive {
		t.Errorf("verdict %q", r.Verdict.Verdict)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"tier":"probe pods"`, `"verdict":"inconclusive"`, `"cleanup":"cleanup: nothing left`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestResolveImages(t *testing.T) {
	nodes := []Node{{Images: []string{"registry.k8s.io/pause:3.10", "labrun/probe-glibc:4f1c", "labrun/probe-musl:9a8b"}}}
	img := resolveImages(Images{}, nodes)
	if img.Glibc != "labrun/probe-glibc:4f1c" || img.Musl != "labrun/probe-musl:9a8b" || img.PullPolicy != "IfNotPresent" {
		t.Errorf("got %+v", img)
	}
	// As a kind node's kubelet reports them (NodeStatus.Images).
	kind := []Node{{Images: []string{"docker.io/labrun/probe-glibc@sha256:0123", "docker.io/labrun/probe-glibc:4f1c", "docker.io/labrun/probe-musl:9a8b"}}}
	if img := resolveImages(Images{}, kind); img.Glibc != "docker.io/labrun/probe-glibc:4f1c" || img.Musl != "docker.io/labrun/probe-musl:9a8b" {
		t.Errorf("kind's names: got %+v", img)
	}
	img = resolveImages(Images{Glibc: "reg.example/probe-glibc:v1", PullPolicy: "Always"}, nil)
	if img.Glibc != "reg.example/probe-glibc:v1" || img.Musl != "" || img.PullPolicy != "Always" {
		t.Errorf("given images: %+v", img)
	}
}

// A --json report decodes back into a Report (the e2e suite and other tools
// read it).
func TestReportJSONRoundTrip(t *testing.T) {
	s := newAPIServer(t)
	rbac(s.cs)
	r, err := Run(context.Background(), s.cs, Options{ID: "j1", Wanted: TierCounters, Load: DefaultLoad, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if back.Access.Tier != r.Access.Tier || back.Access.Wanted != TierCounters || len(back.Measurement.Bursts) != len(r.Measurement.Bursts) ||
		back.Facts.KubeProxy != r.Facts.KubeProxy || back.Verdict.Verdict != r.Verdict.Verdict {
		t.Errorf("round trip lost data:\n%+v\n%+v", back, r)
	}
	var tier Tier
	if err := tier.UnmarshalText([]byte("root")); err == nil {
		t.Error("an unknown tier name must not decode")
	}
}

// A role that may make pods but not list nodes gets facts and a prediction,
// and the measurement is skipped with the reason, not an error.
func TestRunNoNodesReadable(t *testing.T) {
	s := newAPIServer(t)
	rbac(s.cs)
	forbid(s.cs, "list", "nodes", "")
	r, err := Run(context.Background(), s.cs, Options{ID: "n1", Wanted: TierProbes, Load: DefaultLoad})
	if err != nil {
		t.Fatal(err)
	}
	if r.Measurement != nil || !strings.Contains(r.Skipped, "no ready node to probe") || s.created.Load() != 0 {
		t.Errorf("skipped %q, created %d", r.Skipped, s.created.Load())
	}
}
