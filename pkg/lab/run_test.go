package lab

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

func testCells(t *testing.T) []scenario.Cell {
	t.Helper()
	sc, err := scenario.LoadFile("testdata/two-shapes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// As on this machine: no published images, so the calico shape is not run.
	cells := sc.Expand()
	markHostLimits(cells, hostFacts{kernel: noIPVS, have: func(string) bool { return false }})
	return cells
}

func cellByID(t *testing.T, id string) scenario.Cell {
	t.Helper()
	for _, c := range testCells(t) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no cell %s", id)
	return scenario.Cell{}
}

var threeNodes = []cluster.Node{
	{Name: "lab-control-plane", Role: "control-plane", IP: "172.18.0.2"},
	{Name: "lab-worker", Role: "worker", IP: "172.18.0.3"},
	{Name: "lab-worker2", Role: "worker", IP: "172.18.0.4"},
}

func TestAgentDaemonSet(t *testing.T) {
	cell := cellByID(t, "default_glibc_none")
	ds, err := AgentDaemonSet(cell, AgentOptions{Run: "r1", Namespace: "ns", Image: "labagent:x", VIP: "10.96.0.10", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || len(pod.Containers) != 1 {
		t.Fatalf("want one container on the host network, got hostNetwork=%v, %d containers", pod.HostNetwork, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("the agent must be privileged (iptables rules, NFQUEUE)")
	}
	if c.Image != "labagent:x" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %s pull %s, want labagent:x and Never", c.Image, c.ImagePullPolicy)
	}
	want := []string{"run", "--vip=10.96.0.10", "--mode=emulate", "--profile=5.0-5.5", "--window=2ms", "--replicas=3", "--metrics-addr=$(HOST_IP):9465"}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args\n got %q\nwant %q", c.Args, want)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "HOST_IP" || c.Env[0].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("HOST_IP must come from status.hostIP: %+v", c.Env)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("the agent must run on every node, control plane included: %+v", pod.Tolerations)
	}
	sel := ds.Spec.Selector.MatchLabels
	for k, v := range sel {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the template's labels", k, v)
		}
	}
	if sel[workload.LabelApp] != AgentName || ds.Namespace != "ns" {
		t.Errorf("labels %v namespace %s", sel, ds.Namespace)
	}
}

func TestAgentDaemonSetRefuses(t *testing.T) {
	cell := cellByID(t, "default_glibc_none")
	o := AgentOptions{Namespace: "ns", Image: "i", VIP: "10.96.0.10", Replicas: 2}
	bare := cell
	bare.Chaos = scenario.Chaos{}
	if _, err := AgentDaemonSet(bare, o); err == nil || !strings.Contains(err.Error(), "without the race emulator and without delay-aaaa") {
		t.Errorf("bare-kernel cell: err = %v", err)
	}
	p := 0.3
	fixed := cell
	e := *cell.Chaos.RaceEmulator
	e.Probability = &p
	fixed.Chaos.RaceEmulator = &e
	if _, err := AgentDaemonSet(fixed, o); err == nil || !strings.Contains(err.Error(), "probability") {
		t.Errorf("explicit probability: err = %v", err)
	}
	if why := cannotRun(fixed); !strings.Contains(why, "probability") {
		t.Errorf("cannotRun(explicit probability) = %q", why)
	}
	if _, err := AgentDaemonSet(cell, AgentOptions{Namespace: "ns", Image: "i"}); err == nil {
		t.Error("no VIP and no replicas: want an error")
	}
}

// delay-aaaa is a mode of the agent: with the emulator the two are joined,
// without it the agent only holds AAAA queries.
func TestAgentModeWithDelayAAAA(t *testing.T) {
	set := mitigation.MustParseSet("delay-aaaa")
	o := AgentOptions{Namespace: "ns", Image: "i", VIP: "10.96.0.10", Replicas: 2}
	for _, tt := range []struct {
		emulator bool
		want     string
	}{{true, "--mode=emulate+delay-aaaa"}, {false, "--mode=delay-aaaa"}} {
		cell := cellByID(t, "default_glibc_none")
		cell.Mitigations = set
		if !tt.emulator {
			cell.Chaos = scenario.Chaos{}
		}
		if !NeedsAgent(cell) {
			t.Fatalf("emulator %v: a delay-aaaa cell needs the agent", tt.emulator)
		}
		ds, err := AgentDaemonSet(cell, o)
		if err != nil {
			t.Fatal(err)
		}
		if args := ds.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, tt.want) {
			t.Errorf("emulator %v: args %q, want %s", tt.emulator, args, tt.want)
		}
	}
}

func TestCountAgentRules(t *testing.T) {
	save := `*mangle
:PREROUTING ACCEPT [0:0]
:LABRUN-AGENT - [0:0]
-A PREROUTING ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT
-A OUTPUT -m comment --comment labrun-agent -j LABRUN-AGENT
-A LABRUN-AGENT -d 10.96.0.10/32 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 53 --queue-bypass
-A KUBE-SERVICES -d 10.96.0.10/32 -j KUBE-SVC-TCOU7JCQXEZGVUNU
COMMIT
`
	if n := countAgentRules(save); n != 4 {
		t.Errorf("countAgentRules = %d, want 4 (chain, two jumps, one rule)", n)
	}
	if n := countAgentRules("*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"); n != 0 {
		t.Errorf("clean ruleset: %d", n)
	}
}

func TestCellNamespace(t *testing.T) {
	ns := CellNamespace("run-1", "default_glibc_none")
	if ns.Name != workload.Namespace("default_glibc_none") || !strings.HasPrefix(ns.Name, "labrun-") {
		t.Errorf("namespace %s", ns.Name)
	}
	if ns.Labels[workload.LabelRun] != "run-1" || ns.Labels[workload.LabelCell] != workload.CellHash("default_glibc_none") {
		t.Errorf("labels %v", ns.Labels)
	}
}

func TestProbePodsSpreadOverWorkers(t *testing.T) {
	cell := cellByID(t, "default_musl_single-request-reopen")
	pods, err := ProbePods(cell, WorkerNodes(threeNodes), "r", "ns", "probe-musl:x")
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	names := map[string]bool{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		names[p.Name] = true
		if p.Namespace != "ns" || p.Spec.Containers[0].Image != "probe-musl:x" {
			t.Errorf("pod %s: namespace %s image %s", p.Name, p.Namespace, p.Spec.Containers[0].Image)
		}
	}
	if len(pods) != 4 || len(names) != 4 || perNode["lab-worker"] != 2 || perNode["lab-worker2"] != 2 {
		t.Errorf("%d pods, %d names, per node %v; want 2 on each worker, none on the control plane", len(pods), len(names), perNode)
	}
	if _, err := ProbePods(cellByID(t, "calico_glibc_none"), threeNodes, "r", "ns", "i"); err == nil {
		t.Error("a cell that is not run must not get pods")
	}
}

func TestWorkerNodesWithoutWorkers(t *testing.T) {
	if got := WorkerNodes(threeNodes[:1]); len(got) != 1 || got[0].Name != "lab-control-plane" {
		t.Errorf("a cluster without workers runs probes on its control plane: %v", got)
	}
}

func TestClusterName(t *testing.T) {
	for shape, want := range map[string]string{
		"default":               "labrun-default",
		"default+nodelocaldns":  "labrun-default-nodelocaldns",
		"Big_Shape+delay-aaaa":  "labrun-big-shape-delay-aaaa",
		strings.Repeat("x", 60): "labrun-" + strings.Repeat("x", 33),
	} {
		if got := ClusterName("labrun", shape); got != want {
			t.Errorf("ClusterName(%q) = %q, want %q", shape, got, want)
		}
	}
}

const probeOutput = `{"type":"sample","start_ns":1,"duration_us":612,"resolver":"glibc","name":"a","name_kind":"short","result":"ok","answers":1,"seq":0}
probe: a line on stderr
{"type":"sample","start_ns":2,"duration_us":5004000,"resolver":"glibc","name":"a","name_kind":"short","result":"ok","answers":1,"seq":1}

{"type":"summary","resolver":"glibc","lookups":2,"by_result":{"ok":2},"complete":true}
`

func TestCopySamplesKeepsOnlyTheSampleFormat(t *testing.T) {
	var out bytes.Buffer
	log := &probeLog{Probe: results.Probe{File: "p.jsonl"}}
	if err := copySamples(strings.NewReader(probeOutput), &out, log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "stderr") || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("raw file must hold the three JSON lines only:\n%s", out.String())
	}
	if log.Probe.Samples != 2 || log.Slow != 1 || log.Probe.Summary == nil || log.Probe.Summary.Lookups != 2 {
		t.Errorf("samples %d slow %d summary %+v", log.Probe.Samples, log.Slow, log.Probe.Summary)
	}
	if len(log.Noise) != 1 {
		t.Errorf("noise %q", log.Noise)
	}
}

func TestAccount(t *testing.T) {
	read := func(s string) *probeLog {
		l := &probeLog{Probe: results.Probe{File: "p"}}
		if err := copySamples(strings.NewReader(s), &bytes.Buffer{}, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	ok := Account([]*probeLog{read(probeOutput), read(probeOutput)})
	if ok.Problem != "" || ok.Probes != 2 || ok.Expected != 4 || ok.Collected != 4 {
		t.Errorf("matching probes: %+v", ok)
	}
	lines := strings.Split(probeOutput, "\n")
	lost := strings.Join(append(lines[:2:2], lines[3:]...), "\n") // the second sample never arrived
	short := Account([]*probeLog{read(probeOutput), read(lost)})
	if !strings.Contains(short.Problem, "summary says 2 lookups, file holds 1") || short.Expected != 4 || short.Collected != 3 {
		t.Errorf("a lost sample: %+v", short)
	}
	cut := Account([]*probeLog{read("probe: --names: malformed\n")})
	if !strings.Contains(cut.Problem, "no summary line") || !strings.Contains(cut.Problem, "malformed") {
		t.Errorf("a probe that wrote no summary: %+v", cut)
	}
	if none := Account(nil); none.Problem == "" {
		t.Error("no probe at all must be a problem")
	}
}

func TestETA(t *testing.T) {
	cells := testCells(t)[:4] // the default shape's four cells of 10 s
	var e ETA
	if got, want := e.Remaining(cells, 0, true), 4*(10*time.Second+scenario.EstimateCellOverhead)+scenario.EstimateClusterDown; got != want {
		t.Errorf("before any cell: %s, want %s", got, want)
	}
	e.Observe(16*time.Second, cells[0]) // 6 s overhead
	e.Observe(20*time.Second, cells[1]) // 10 s overhead
	if e.Overhead() != 8*time.Second {
		t.Errorf("mean overhead %s, want 8s", e.Overhead())
	}
	if got, want := e.Remaining(cells[2:], 1, false), 2*18*time.Second+scenario.EstimateClusterUp+scenario.EstimateClusterDown; got != want {
		t.Errorf("two cells and a cluster to come: %s, want %s", got, want)
	}
	e.Observe(time.Second, cells[2]) // faster than its duration: no negative overhead
	if e.Overhead() != 16*time.Second/3 {
		t.Errorf("mean overhead %s", e.Overhead())
	}
}

func TestCellsToRun(t *testing.T) {
	run, err := results.Create(t.TempDir(), "r")
	if err != nil {
		t.Fatal(err)
	}
	cells := testCells(t)
	todo, err := cellsToRun(run, cells, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(todo) != 4 {
		t.Fatalf("%d cells to run, want the default shape's 4", len(todo))
	}
	st, ok, err := run.ReadStatus("calico_glibc_none")
	if err != nil || !ok || st.State != results.NotRun || !strings.Contains(st.Reason, "calico") {
		t.Errorf("calico cell status %+v ok=%v err=%v", st, ok, err)
	}
	// Resume: a complete cell is skipped, an incomplete one runs again.
	if err := run.WriteStatus(results.Status{Cell: todo[0].ID, State: results.Complete}); err != nil {
		t.Fatal(err)
	}
	if err := run.WriteStatus(results.Status{Cell: todo[1].ID, State: results.Incomplete, Reason: "interrupted"}); err != nil {
		t.Fatal(err)
	}
	again, err := cellsToRun(run, cells, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := cellIDs(again); !slices.Equal(got, cellIDs(todo[1:])) {
		t.Errorf("resume runs %v, want %v", got, cellIDs(todo[1:]))
	}
}

func TestOpenRunResumeChecksTheScenario(t *testing.T) {
	dir := t.TempDir()
	sc, run, err := openRun(RunOptions{Scenario: "testdata/two-shapes.yaml", ResultsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.Name(), sc.Metadata.Name+"-") {
		t.Errorf("run name %s", run.Name())
	}
	if _, err := os.Stat(run.ScenarioPath()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openRun(RunOptions{Resume: run.Dir}); err != nil {
		t.Errorf("resume from the recorded scenario: %v", err)
	}
	if _, _, err := openRun(RunOptions{Resume: run.Dir, Scenario: "../../scenarios/grpc.yaml"}); err == nil || !strings.Contains(err.Error(), "does not have the cells") {
		t.Errorf("resume with another scenario: err = %v", err)
	}
}

func TestCellCountersAndDropsLine(t *testing.T) {
	before := snapshot{
		conntrack: map[string]collect.ConntrackStats{"a": {"insert_failed": 1, "clashres": 10}, "b": {"insert_failed": 0, "clashres": 0}},
		emulator:  map[string]map[string]uint64{"a": {"dropped": 0}, "b": {"dropped": 2}},
	}
	after := snapshot{
		conntrack: map[string]collect.ConntrackStats{"a": {"insert_failed": 1, "clashres": 15}, "b": {"insert_failed": 3, "clashres": 1}},
		emulator:  map[string]map[string]uint64{"a": {"dropped": 4}, "b": {"dropped": 7}},
	}
	c := cellCounters("cell", before, after)
	if len(c.Nodes) != 2 || c.Nodes["b"].EmulatorAfter["dropped"] != 7 || c.Nodes["a"].Before["clashres"] != 10 {
		t.Fatalf("counters %+v", c)
	}
	if got, want := dropsLine(c), "insert_failed +3, clashres +6, emulator dropped +9"; got != want {
		t.Errorf("dropsLine = %q, want %q", got, want)
	}
	bare := cellCounters("cell", snapshot{conntrack: before.conntrack}, snapshot{conntrack: after.conntrack})
	if got := dropsLine(bare); strings.Contains(got, "emulator") || bare.Nodes["a"].EmulatorAfter != nil {
		t.Errorf("a bare-kernel cell has no emulator counters: %q %+v", got, bare.Nodes["a"])
	}
}
