package lab

import (
	"bytes"
	"context"
	"fmt"
	"sync"

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
	var mu sync.Mutex
	err := cluster.EachNode(c.Nodes, func(n cluster.Node) error {
		raw, err := c.Exec(ctx, n.Name, "cat", "/proc/net/stat/nf_conntrack")
		if err != nil {
			return fmt.Errorf("conntrack counters: %w", err)
		}
		st, err := collect.ParseConntrackStat(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("conntrack counters of %s: %w", n.Name, err)
		}
		var ag map[string]uint64
		if withAgent {
			if ag, err = fetchAgentCounters(ctx, n.IP); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		s.conntrack[n.Name] = st
		if withAgent {
			s.emulator[n.Name] = ag
		}
		return nil
	})
	return s, err
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
