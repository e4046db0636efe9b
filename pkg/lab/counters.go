package lab

import (
	"bytes"
	"context"
	"fmt"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/results"
)

// snapshot is every node's counters at one moment.
type snapshot struct {
	conntrack map[string]collect.ConntrackStats
	emulator  map[string]map[string]uint64 // nil when the agent does not run
}

// readCounters reads /proc/net/stat/nf_conntrack in every node's network
// namespace (docker exec into the node container) and, when the race
// emulator runs, its agent's counters on every node.
func readCounters(ctx context.Context, c *cluster.Cluster, withAgent bool) (snapshot, error) {
	s := snapshot{conntrack: map[string]collect.ConntrackStats{}}
	if withAgent {
		s.emulator = map[string]map[string]uint64{}
	}
	for _, n := range c.Nodes {
		raw, err := c.Exec(ctx, n.Name, "cat", "/proc/net/stat/nf_conntrack")
		if err != nil {
			return s, fmt.Errorf("conntrack counters: %w", err)
		}
		st, err := collect.ParseConntrackStat(bytes.NewReader(raw))
		if err != nil {
			return s, fmt.Errorf("conntrack counters of %s: %w", n.Name, err)
		}
		s.conntrack[n.Name] = st
		if withAgent {
			ag, err := fetchAgentCounters(ctx, n.IP)
			if err != nil {
				return s, fmt.Errorf("node %s: %w", n.Name, err)
			}
			s.emulator[n.Name] = ag
		}
	}
	return s, nil
}

// cellCounters pairs two snapshots into a cell's counters file.
func cellCounters(cellID string, before, after snapshot) results.Counters {
	out := results.Counters{Cell: cellID, Nodes: map[string]results.NodeCounters{}}
	for node, b := range before.conntrack {
		a, ok := after.conntrack[node]
		if !ok {
			continue
		}
		nc := results.NodeCounters{Before: b, After: a}
		if before.emulator != nil && after.emulator != nil {
			nc.EmulatorBefore, nc.EmulatorAfter = before.emulator[node], after.emulator[node]
		}
		out.Nodes[node] = nc
	}
	return out
}
