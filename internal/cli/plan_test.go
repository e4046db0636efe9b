package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/plan"
)

func TestPlanJSONAndShards(t *testing.T) {
	out, err := runCLI(t, "plan", "../../scenarios/baseline.yaml", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var d plan.Document
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if d.Scenario != "baseline" || d.Totals.Cells != 4 || d.Totals.WillRun != 4 || d.Totals.EstimateSeconds == 0 ||
		len(d.Cells) != 4 || d.Cells[0].Status != plan.WillRun || d.Shards != nil {
		t.Errorf("plan --json: %+v", d)
	}

	out, err = runCLI(t, "plan", "../../scenarios/baseline.yaml", "--shards", "3", "--json")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("plan --shards 3 --json: %v\n%s", err, out)
	}
	if len(d.Shards) != 3 || d.Shards[0].Shard != "1/3" || d.Shards[2].Cells == nil || d.Cells[0].Shard != 1 {
		t.Errorf("plan --shards 3 --json: %+v", d.Shards)
	}
	if !strings.Contains(out, `"cells": []`) {
		t.Errorf("an empty shard is not listed with cells: []:\n%s", out)
	}

	out, err = runCLI(t, "plan", "../../scenarios/baseline.yaml", "--shards", "2")
	for _, want := range []string{"2 shards (labrun run ../../scenarios/baseline.yaml --shard i/2)", "SHARD  ESTIMATE", "1/2", "default (2 of 4 cells)"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("plan --shards 2 lacks %q: %v\n%s", want, err, out)
		}
	}

	for _, n := range []string{"0", "-1", "257", "a"} {
		_, err := runCLI(t, "plan", "../../scenarios/baseline.yaml", "--shards", n)
		if ExitCode(context.Background(), err) != ExitUsage {
			t.Errorf("plan --shards %s: exit %d, %v", n, ExitCode(context.Background(), err), err)
		}
	}
}

// TestRunShardFlag: a bad --shard is a usage error. The scenario file does
// not exist, so that a run the flag failed to stop ends before any cluster.
func TestRunShardFlag(t *testing.T) {
	for _, s := range []string{"0/2", "3/2", "a", "1/0", "1/257", "2", ""} {
		_, err := runCLI(t, "run", "absent.yaml", "--results", t.TempDir(), "--shard", s)
		if ExitCode(context.Background(), err) != ExitUsage || !strings.Contains(err.Error(), "want i/N with 1 ≤ i ≤ N") {
			t.Errorf("run --shard %q: exit %d, %v", s, ExitCode(context.Background(), err), err)
		}
	}
}
