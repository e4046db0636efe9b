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
	Conntrack map[string]uint64 `json:"conntrack"`
	Emulator  map[string]uint64 `json:"emulator,omitempty"`
	// Reset lists node:counter pairs that went backwards (a node restarted):
	// they are left out of the sums.
	Reset []string `json:"reset,omitempty"`
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
		d.Reset = append(d.Reset, addDeltas(d.Conntrack, nc.Before, nc.After, node)...)
		if nc.EmulatorAfter != nil {
			if d.Emulator == nil {
				d.Emulator = map[string]uint64{}
			}
			d.Reset = append(d.Reset, addDeltas(d.Emulator, nc.EmulatorBefore, nc.EmulatorAfter, node+"/emulator")...)
		}
	}
	return d
}

func addDeltas(sum, before, after map[string]uint64, node string) (reset []string) {
	for k, a := range after {
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
