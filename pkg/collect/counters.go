package collect

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// Started is when each node's init started (clock ticks after the host
	// booted): a node container that restarted between two snapshots has
	// another, and every counter of its network namespace began again at 0.
	Started map[string]uint64
}

// ReadCounters reads /proc/net/stat/nf_conntrack in every node's network
// namespace (docker exec into the node container), with the start of the
// node's init, and, when the race emulator runs, its agent's counters on
// every node. A node whose agent does not answer keeps its conntrack
// counters in the snapshot returned with the error, so that a restarted
// node is still recognised.
func ReadCounters(ctx context.Context, c *cluster.Cluster, withAgent bool) (Snapshot, error) {
	s := Snapshot{Conntrack: map[string]ConntrackStats{}, Started: map[string]uint64{}}
	if withAgent {
		s.Emulator = map[string]emulator.Snapshot{}
	}
	var mu sync.Mutex
	err := cluster.EachNode(c.Nodes, func(n cluster.Node) error {
		raw, err := c.Exec(ctx, n.Name, "cat", "/proc/1/stat", "/proc/net/stat/nf_conntrack")
		if err != nil {
			return fmt.Errorf("conntrack counters: %w", err)
		}
		stat, table, _ := bytes.Cut(raw, []byte("\n"))
		started, err := ParseStartTime(string(stat))
		if err != nil {
			return fmt.Errorf("node %s: /proc/1/stat: %w", n.Name, err)
		}
		st, err := ParseConntrackStat(bytes.NewReader(table))
		if err != nil {
			return fmt.Errorf("conntrack counters of %s: %w", n.Name, err)
		}
		mu.Lock()
		s.Conntrack[n.Name], s.Started[n.Name] = st, started
		mu.Unlock()
		if withAgent {
			ag, err := chaos.AgentCounters(ctx, n.IP)
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			mu.Lock()
			s.Emulator[n.Name] = ag
			mu.Unlock()
		}
		return nil
	})
	return s, err
}

// ParseStartTime reads a process's start time (field 22, clock ticks after
// boot) from its /proc/PID/stat line. The command name (field 2) is in
// parentheses and may hold spaces and parentheses: fields are counted after
// its last ')'.
func ParseStartTime(line string) (uint64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 20: %q", len(f), line)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("start time %q: %w", f[19], err)
	}
	return v, nil
}

// Restarted names the nodes whose init started anew between two snapshots
// (sorted): their counters restarted at zero, so no delta of theirs means
// anything.
func Restarted(before, after Snapshot) []string {
	var out []string
	for node, b := range before.Started {
		if a, ok := after.Started[node]; ok && a != b {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
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
