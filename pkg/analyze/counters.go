package analyze

import (
	"fmt"
	"slices"
	"strings"

	"labrun.dev/labrun/pkg/results"
)

// Counter names the claims read.
const (
	InsertFailed    = "insert_failed" // /proc/net/stat/nf_conntrack: clashes that dropped a packet
	ClashResolved   = "clashres"      // clashes the kernel resolved (Linux ≥ 5.10)
	ConntrackDrop   = "drop"
	EmulatorDropped = "dropped" // the race emulator's drops
)

// Deltas are a cell's counter changes, summed over nodes.
type Deltas struct {
	// Conntrack holds the event counters of /proc/net/stat/nf_conntrack.
	Conntrack map[string]uint64 `json:"conntrack"`
	// Gauges are the nf_conntrack columns that are levels (entries): a
	// difference of two levels is no count of anything, so they are kept
	// as they were.
	Gauges map[string]Gauge `json:"gauges,omitempty"`
	// Emulator holds the race emulator's event counters (emulator.Counts);
	// its settings (port, window_us, ...) are not counters and are left out.
	Emulator map[string]uint64 `json:"emulator,omitempty"`
	// Reset lists node:counter pairs that went backwards (a node restarted):
	// they are left out of the sums.
	Reset []string `json:"reset,omitempty"`
}

// Gauge is a level before and after the cell, summed over nodes, and the
// highest one node showed at either moment.
type Gauge struct {
	Before  uint64 `json:"before"`
	After   uint64 `json:"after"`
	NodeMax uint64 `json:"node_max"`
}

// CounterDeltas sums after − before over the nodes of c.
func CounterDeltas(c results.Counters) Deltas {
	d := Deltas{Conntrack: map[string]uint64{}}
	nodes := make([]string, 0, len(c.Nodes))
	for n := range c.Nodes {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, node := range nodes {
		nc := c.Nodes[node]
		isCounter := func(k string) bool { return !results.ConntrackGauges[k] }
		d.Reset = append(d.Reset, addDeltas(d.Conntrack, nc.Before, nc.After, node, isCounter)...)
		addGauges(&d, nc.Before, nc.After)
		if before, after, ok := nc.EmulatorCounts(); ok {
			if d.Emulator == nil {
				d.Emulator = map[string]uint64{}
			}
			every := func(string) bool { return true }
			d.Reset = append(d.Reset, addDeltas(d.Emulator, before.ByName(), after.ByName(), node+"/emulator", every)...)
		}
	}
	return d
}

func addDeltas(sum, before, after map[string]uint64, node string, isCounter func(string) bool) (reset []string) {
	for k, a := range after {
		if !isCounter(k) {
			continue
		}
		b := before[k]
		if a < b {
			reset = append(reset, node+":"+k)
			continue
		}
		sum[k] += a - b
	}
	slices.Sort(reset)
	return reset
}

func addGauges(d *Deltas, before, after map[string]uint64) {
	for k := range results.ConntrackGauges {
		b, hasB := before[k]
		a, hasA := after[k]
		if !hasB && !hasA {
			continue
		}
		if d.Gauges == nil {
			d.Gauges = map[string]Gauge{}
		}
		g := d.Gauges[k]
		g.Before += b
		g.After += a
		g.NodeMax = max(g.NodeMax, a, b)
		d.Gauges[k] = g
	}
}

// Drops is the count that stands for "packets lost to the race": the
// emulator's drops when it ran, else the kernel's insert_failed. which says
// which one it is.
func (d Deltas) Drops() (n uint64, which string) {
	if d.Emulator != nil {
		return d.Emulator[EmulatorDropped], "emulator dropped"
	}
	return d.Conntrack[InsertFailed], InsertFailed
}

func (d Deltas) String() string {
	var parts []string
	for _, k := range []string{InsertFailed, ClashResolved, ConntrackDrop} {
		parts = append(parts, fmt.Sprintf("%s +%d", k, d.Conntrack[k]))
	}
	if d.Emulator != nil {
		parts = append(parts, fmt.Sprintf("emulator dropped +%d", d.Emulator[EmulatorDropped]))
	}
	return strings.Join(parts, ", ")
}
