package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/scenario"
)

// TestLookOnNode runs the node script here: a process that holds an abstract
// unix socket of the lock's name is an agent running; once it lets go, none is.
func TestLookOnNode(t *testing.T) {
	local := cluster.RunnerFunc(func(ctx context.Context, _ string, _ io.Reader, argv ...string) ([]byte, error) {
		return exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	})
	c := &cluster.Cluster{Runner: local}
	lock := fmt.Sprintf("@labrun-test-lock-%d", os.Getpid())
	l, err := net.Listen("unix", lock)
	if err != nil {
		t.Skipf("no abstract unix socket here: %v", err)
	}
	running, _, err := lookOnNode(context.Background(), c, "here", lock)
	if err != nil || !running {
		t.Errorf("lock held: running %v, err %v; want running", running, err)
	}
	if running, _, _ := lookOnNode(context.Background(), c, "here", lock+"-other"); running {
		t.Error("another name's lock counted as the agent's")
	}
	l.Close()
	if running, _, err := lookOnNode(context.Background(), c, "here", lock); err != nil || running {
		t.Errorf("lock let go: running %v, err %v; want not running", running, err)
	}
}

// TestCheckAgentGone: the check waits while an agent still holds its lock,
// passes once none does, and names the nodes that kept rules.
func TestCheckAgentGone(t *testing.T) {
	const rules = "*mangle\n:LABRUN-AGENT - [0:0]\n-A OUTPUT -m comment --comment labrun-agent -j LABRUN-AGENT\nCOMMIT\n"
	nodes := []cluster.Node{{Name: "w1"}, {Name: "w2"}}
	for _, tc := range []struct {
		name      string
		held      int64  // polls during which w1's agent still runs
		w2        string // what w2 has once no agent runs
		wantErr   string
		wantPolls int64
	}{
		{name: "exits after two looks", held: 2, wantPolls: 3},
		{name: "gone at once", wantPolls: 1},
		{name: "rules left", w2: rules, wantErr: "race emulator rules left after its agent stopped (w2: 2)", wantPolls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var polls atomic.Int64
			run := cluster.RunnerFunc(func(_ context.Context, node string, _ io.Reader, argv ...string) ([]byte, error) {
				if node == "w1" {
					if polls.Add(1) <= tc.held {
						return []byte(agentRunning + "\n" + rules), nil
					}
					return nil, nil
				}
				return []byte(tc.w2), nil
			})
			err := checkAgentGone(context.Background(), &cluster.Cluster{Nodes: nodes, Runner: run})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if polls.Load() != tc.wantPolls {
				t.Errorf("w1 looked at %d times, want %d", polls.Load(), tc.wantPolls)
			}
		})
	}
}

// TestAgentSpec: cells that need the same agent (the race emulator alone,
// whatever their resolver's options) get equal specs, wherever the agent
// goes; delay-aaaa, another node set or another image make another agent.
func TestAgentSpec(t *testing.T) {
	c := &cluster.Cluster{Nodes: []cluster.Node{{Name: "w1"}, {Name: "w2"}}}
	opts := AgentOptions{Run: "r", Namespace: "ns1", Image: "labagent:1", VIP: "10.96.0.10", Replicas: 2}
	spec := func(c *cluster.Cluster, cell scenario.Cell, o AgentOptions) string {
		t.Helper()
		a, err := NewAgent(c, cell, o)
		if err != nil {
			t.Fatal(err)
		}
		return a.Spec()
	}
	none := spec(c, cellFor(t, "glibc", "none", true), opts)
	other := opts
	other.Namespace, other.Run = "ns2", "r2"
	if got := spec(c, cellFor(t, "musl", "single-request-reopen", true), other); got != none {
		t.Errorf("none and single-request-reopen under the emulator: specs differ:\n%s\n%s", none, got)
	}
	if spec(c, cellFor(t, "glibc", "delay-aaaa", true), opts) == none {
		t.Error("delay-aaaa has the emulator's spec")
	}
	if spec(&cluster.Cluster{Nodes: c.Nodes[:1]}, cellFor(t, "glibc", "none", true), opts) == none {
		t.Error("another node set has the same spec")
	}
	image := opts
	image.Image = "labagent:2"
	if spec(c, cellFor(t, "glibc", "none", true), image) == none {
		t.Error("another image has the same spec")
	}
}
