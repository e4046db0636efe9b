package collect

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"labrun.dev/labrun/pkg/chaos"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
)

// Snapshot is every node's counters at one moment.
type Snapshot struct {
	Conntrack map[string]ConntrackStats
	Emulator  map[string]emulator.Snapshot // nil when the agent does not run
}

// ReadCounters reads /proc/net/stat/nf_conntrack in every node's network
// namespace (docker exec into the node container) and, when the race
// emulator runs, its agent's counters on every node.
func ReadCounters(ctx context.Context, c *cluster.Cluster, withAgent bool) (Snapshot, error) {
	s := Snapshot{Conntrack: map[string]ConntrackStats{}}
	if withAgent {
		s.Emulator = map[string]emulator.Snapshot{}
	}
	var mu sync.Mutex
	err := cluster.EachNode(c.Nodes, func(n cluster.Node) error {
		raw, err := c.Exec(ctx, n.Name, "cat", "/proc/net/stat/nf_conntrack")
		if err != nil {
			return fmt.Errorf("conntrack counters: %w", err)
		}
		st, err := ParseConntrackStat(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("conntrack counters of %s: %w", n.Name, err)
		}
		var ag emulator.Snapshot
		if withAgent {
			if ag, err = chaos.AgentCounters(ctx, n.IP); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		s.Conntrack[n.Name] = st
		if withAgent {
			s.Emulator[n.Name] = ag
		}
		return nil
	})
	return s, err
}

// CellCounters pairs two snapshots into a cell's counters file.
func CellCounters(cellID string, before, after Snapshot) results.Counters {
	out := results.Counters{Cell: cellID, Nodes: map[string]results.NodeCounters{}}
	for node, b := range before.Conntrack {
		a, ok := after.Conntrack[node]
		if !ok {
			continue
		}
		nc := results.NodeCounters{Before: b, After: a}
		eb, okB := before.Emulator[node]
		ea, okA := after.Emulator[node]
		if okB && okA {
			nc.EmulatorBefore, nc.EmulatorAfter = eb.Record(), ea.Record()
		}
		out.Nodes[node] = nc
	}
	return out
}
