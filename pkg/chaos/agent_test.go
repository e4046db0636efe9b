package chaos

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// cellFor is the first cell of a scenario with the race emulator (profile
// 5.0-5.5, window 2 ms) and the given mitigation set.
func cellFor(t *testing.T, resolver, set string, emulator bool) scenario.Cell {
	t.Helper()
	chaos := ""
	if emulator {
		chaos = "chaos:\n  raceEmulator: {profile: \"5.0-5.5\", window: 2ms}\n"
	}
	s, err := scenario.Parse("t.yaml", []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: t}
clusters:
  - name: default
    dns: {server: coredns, replicas: 3}
workload:
  resolvers: [`+resolver+`]
  mitigations: ["`+set+`"]
  names:
    - {name: kubernetes.default, kind: short}
  load: {podsPerNode: 2, concurrency: 4, rate: 25/s, duration: 10s}
`+chaos))
	if err != nil {
		t.Fatal(err)
	}
	return s.Expand()[0]
}

func TestAgentDaemonSet(t *testing.T) {
	cell := cellFor(t, "glibc", "none", true)
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
	cell := cellFor(t, "glibc", "none", true)
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
		cell := cellFor(t, "glibc", "none", true)
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

// On an existing cluster the agent runs on the probed nodes only: one
// node-affinity term per node, since the API server takes one value per
// field selector.
func TestAgentDaemonSetNodes(t *testing.T) {
	cell := scenario.Cell{ID: "c", Chaos: scenario.Chaos{RaceEmulator: &scenario.RaceEmulator{Profile: "pre-5.0"}}}
	o := AgentOptions{Run: "r1", Namespace: "ns", Image: "labagent:x", VIP: "10.96.0.10", Replicas: 2}
	ds, err := AgentDaemonSet(cell, o)
	if err != nil || ds.Spec.Template.Spec.Affinity != nil {
		t.Fatalf("every node: affinity %+v, err %v", ds.Spec.Template.Spec.Affinity, err)
	}
	o.Nodes = []string{"w1", "w2"}
	if ds, err = AgentDaemonSet(cell, o); err != nil {
		t.Fatal(err)
	}
	terms := ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 2 {
		t.Fatalf("terms %+v, want one per node", terms)
	}
	for i, term := range terms {
		if len(term.MatchFields) != 1 || len(term.MatchFields[0].Values) != 1 || term.MatchFields[0].Values[0] != o.Nodes[i] {
			t.Errorf("term %d: %+v", i, term)
		}
	}
}
