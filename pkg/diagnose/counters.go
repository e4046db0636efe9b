package diagnose

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/collect"
)

// CounterSnapshot is one reading of a node's conntrack statistics.
type CounterSnapshot struct {
	AtNS  int64
	Stats collect.ConntrackStats
}

// ParseCounterLog reads a counter pod's log: after each "@ <unix ns>" mark,
// /proc/net/stat/nf_conntrack as the node's kernel writes it (parsed by
// pkg/collect, so the header row decides the columns). A snapshot that
// does not parse (the log cut in the middle of one) is skipped.
func ParseCounterLog(r io.Reader) ([]CounterSnapshot, error) {
	var out []CounterSnapshot
	var at int64 = -1
	var block strings.Builder
	flush := func() {
		if at >= 0 && block.Len() > 0 {
			if st, err := collect.ParseConntrackStat(strings.NewReader(block.String())); err == nil {
				out = append(out, CounterSnapshot{AtNS: at, Stats: st})
			}
		}
		block.Reset()
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, CounterMark+" "); ok {
			flush()
			ns, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				at = -1
				continue
			}
			at = ns
			continue
		}
		block.WriteString(line)
		block.WriteByte('\n')
	}
	flush()
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read counter log: %w", err)
	}
	return out, nil
}

// NodeCounters are a node's conntrack counters around the probes' window.
type NodeCounters struct {
	Node string `json:"node"`
	// Delta is after − before per column (entries is a level).
	Delta map[string]int64 `json:"delta,omitempty"`
	// Clashres: the kernel has the clashres column (≥ 5.10), so
	// insert_failed counts dropped packets only; without it insert_failed
	// also counts clashes that were resolved.
	Clashres bool   `json:"clashresColumn"`
	Note     string `json:"note,omitempty"`
}

// AroundWindow pairs the last snapshot taken at or before startNS with the
// first taken at or after endNS.
func AroundWindow(node string, snaps []CounterSnapshot, startNS, endNS int64) NodeCounters {
	nc := NodeCounters{Node: node}
	var before, after *CounterSnapshot
	for i := range snaps {
		s := &snaps[i]
		if s.AtNS <= startNS {
			before = s
		}
		if s.AtNS >= endNS && after == nil {
			after = s
		}
	}
	if before == nil || after == nil {
		nc.Note = fmt.Sprintf("not read: no snapshot before and after the window (%d snapshots)", len(snaps))
		return nc
	}
	nc.Delta = collect.Delta(before.Stats, after.Stats)
	_, nc.Clashres = after.Stats["clashres"]
	return nc
}

// Summary is the counters' line in the text output, kernel-aware.
func (c NodeCounters) Summary() string {
	if c.Delta == nil {
		return c.Note
	}
	if c.Clashres {
		return fmt.Sprintf("insert_failed %+d (packets dropped), clashres %+d (clashes the kernel resolved)", c.Delta["insert_failed"], c.Delta["clashres"])
	}
	return fmt.Sprintf("insert_failed %+d, drop %+d (no clashres column: before 5.10 insert_failed also counts resolved clashes)", c.Delta["insert_failed"], c.Delta["drop"])
}
