package analyze

import (
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
)

// Numbers as in a real run's counters file: entries (a level) fell on one
// node and rose on the other, and the agent's snapshot carries its settings
// next to its counts.
func TestCounterDeltasKeepOnlyCounters(t *testing.T) {
	settings := map[string]uint64{"port": 53, "queue": 53, "window_us": 1000, "drop_probability": 1}
	emu := func(seen, dropped uint64) map[string]uint64 {
		m := map[string]uint64{"seen": seen, "dropped": dropped}
		for k, v := range settings {
			m[k] = v
		}
		return m
	}
	d := CounterDeltas(results.Counters{Nodes: map[string]results.NodeCounters{
		"cp": {Before: map[string]uint64{"entries": 362, "clashres": 0}, After: map[string]uint64{"entries": 255, "clashres": 0},
			EmulatorBefore: emu(0, 0), EmulatorAfter: emu(0, 0)},
		"w": {Before: map[string]uint64{"entries": 15, "clashres": 0}, After: map[string]uint64{"entries": 122, "clashres": 13},
			EmulatorBefore: emu(10, 1), EmulatorAfter: emu(195, 33)},
	}})
	if len(d.Reset) != 0 {
		t.Errorf("reset = %v: a level that fell is no reset", d.Reset)
	}
	if _, ok := d.Conntrack["entries"]; ok {
		t.Errorf("entries among the counter deltas: %v", d.Conntrack)
	}
	if g := d.Gauges["entries"]; g != (Gauge{Before: 377, After: 377, NodeMax: 362}) {
		t.Errorf("entries gauge = %+v", g)
	}
	if d.Conntrack["clashres"] != 13 || d.Emulator["seen"] != 185 || d.Emulator["dropped"] != 32 {
		t.Errorf("deltas = %+v", d)
	}
	for k := range settings {
		if _, ok := d.Emulator[k]; ok {
			t.Errorf("setting %s among the emulator's counters: %v", k, d.Emulator)
		}
	}
}

func TestCounterDeltasResetStillListed(t *testing.T) {
	d := CounterDeltas(results.Counters{Nodes: map[string]results.NodeCounters{
		"w": {Before: map[string]uint64{"insert_failed": 9}, After: map[string]uint64{"insert_failed": 2},
			EmulatorBefore: map[string]uint64{"dropped": 5}, EmulatorAfter: map[string]uint64{"dropped": 1}},
	}})
	if got := strings.Join(d.Reset, ","); got != "w:insert_failed,w/emulator:dropped" {
		t.Errorf("reset = %q", got)
	}
}
