package report

import (
	"fmt"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/analyze"
)

// cellRow is one row of the cells table, in the words and units a reader
// wants at a glance; summary.json keeps the raw numbers.
type cellRow struct {
	*analyze.Cell
	// RanOn says what produced the delays: the emulator (with the kernel it
	// imitates) or this kernel alone.
	RanOn string
	// The emulator's drops and the kernel's own counters, never merged:
	// EmulatorDropped is "n/a" where the emulator did not run.
	EmulatorDropped, InsertFailed, ClashResolved string
	// Resets lists counters that went backwards (left out of the sums).
	Resets string
}

func newCellRow(c *analyze.Cell) cellRow {
	// "–": no counters were read (a cell not run); "n/a": they were, and
	// the emulator was not running.
	r := cellRow{Cell: c, RanOn: "bare kernel", EmulatorDropped: "–", InsertFailed: "–", ClashResolved: "–"}
	if c.Emulator {
		r.RanOn = "emulator " + c.EmulatorProfile
	}
	if d := c.Counters; d != nil {
		r.InsertFailed = counterText(d.Conntrack, analyze.InsertFailed)
		r.ClashResolved = counterText(d.Conntrack, analyze.ClashResolved)
		r.EmulatorDropped = "n/a"
		if d.Emulator != nil {
			r.EmulatorDropped = counterText(d.Emulator, analyze.EmulatorDropped)
		}
		r.Resets = strings.Join(d.Reset, ", ")
	}
	return r
}

// counterText is "+n", or "–" for a column this kernel does not have
// (clashres appeared in 5.10).
func counterText(m map[string]uint64, k string) string {
	v, ok := m[k]
	if !ok {
		return "–"
	}
	return "+" + strconv.FormatUint(v, 10)
}

// ratioText writes a ratio; intervalText its interval, and says so when
// the interval holds 1: the data cannot tell the cell from its baseline.
func ratioText(i analyze.Interval) string { return fmt.Sprintf("%.3g", i.Ratio) }

func intervalText(i analyze.Interval) string {
	s := fmt.Sprintf("[%.3g, %.3g]", i.Low, i.High)
	if i.Low <= 1 && 1 <= i.High {
		s += " no difference"
	}
	return s
}
