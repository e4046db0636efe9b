package analyze

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
)

// Numbers as in a real run's counters file: entries (a level) fell on one
// node and rose on the other, and the agent's snapshot carries its settings
// next to its counts.
func TestCounterDeltasKeepOnlyCounters(t *testing.T) {
	one := 1.0
	settings := emulator.Settings{Port: 53, Queue: 53, WindowUS: 1000, Probability: &one}
	emu := func(seen, dropped uint64) *emulator.Record {
		return &emulator.Record{Counts: emulator.Counts{Seen: seen, Dropped: dropped}, Settings: settings}
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
	for _, k := range []string{"port", "queue", "window_us", "drop_probability"} {
		if _, ok := d.Emulator[k]; ok {
			t.Errorf("setting %s among the emulator's counters: %v", k, d.Emulator)
		}
	}
}

func TestCounterDeltasResetStillListed(t *testing.T) {
	d := CounterDeltas(results.Counters{Nodes: map[string]results.NodeCounters{
		"w": {Before: map[string]uint64{"insert_failed": 9}, After: map[string]uint64{"insert_failed": 2},
			EmulatorBefore: &emulator.Record{Counts: emulator.Counts{Dropped: 5}}, EmulatorAfter: &emulator.Record{Counts: emulator.Counts{Dropped: 1}}},
	}})
	if got := strings.Join(d.Reset, ","); got != "w:insert_failed,w/emulator:dropped" {
		t.Errorf("reset = %q", got)
	}
}

// summary.json's counter deltas of a run written at 1e17916, as labrun
// computed them then (pkg/results/testdata says how the files were made).
func TestCounterDeltasOfAnOldRun(t *testing.T) {
	run := results.RunDir{Dir: filepath.Join("..", "results", "testdata", "written-by-1e17916")}
	emu := `"emulator":{"clashes":15,"delay_seen":10758,"delayed":5379,"dropped":9,"errors":0,"kernel_errors":0,"kernel_timestamps":5907,"overruns":0,"parse_errors":0,"passed":5898,"seen":5907,"would_drop":0}`
	conn := `{"conntrack":{"chainlength":0,"clashres":18,"drop":9,"early_drop":0,"found":90,"insert":900,"insert_failed":9,"invalid":9,"search_restart":0},"gauges":{"entries":{"before":1113,"after":1122,"node_max":377}},`
	for cell, want := range map[string]string{
		"default_glibc_none":       conn + emu + "}",
		"default_glibc_delay-aaaa": conn + emu + "}",
		"default_musl_none":        conn + emu + "}",
		"bare_glibc_none":          `{"conntrack":{"chainlength":0,"clashres":6,"drop":3,"early_drop":0,"found":30,"insert":300,"insert_failed":3,"invalid":3,"search_restart":0},"gauges":{"entries":{"before":371,"after":374,"node_max":374}}}`,
	} {
		c, ok, err := run.ReadCounters(cell)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", cell, ok, err)
		}
		got, _ := json.Marshal(CounterDeltas(c))
		if string(got) != want {
			t.Errorf("%s: deltas\n%s\nwant\n%s", cell, got, want)
		}
	}
}
