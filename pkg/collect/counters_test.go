package collect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
)

// The counters file written now from the agent's snapshots is the file
// labrun wrote at 1e17916 from the same snapshots (pkg/results/testdata
// says how it was made), but for the settings the old reader dropped
// because they were not whole numbers.
func TestCellCountersWriteWhatTheyWrote(t *testing.T) {
	old := results.RunDir{Dir: filepath.Join("..", "results", "testdata", "written-by-1e17916")}
	started := time.Date(2026, 12, 5, 5, 11, 43, 0, time.UTC)
	// The agent's snapshot as the runner gets it: through its JSON.
	served := func(s emulator.Snapshot) emulator.Snapshot {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var back emulator.Snapshot
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return back
	}
	snap := func(info emulator.Info, seen, clashes, dropped, delaySeen, delayed uint64) emulator.Snapshot {
		return served(emulator.Snapshot{Info: info, At: started.Add(time.Minute), Counts: emulator.Counts{
			Seen: seen, Clashes: clashes, Dropped: dropped, Passed: seen - dropped, DelaySeen: delaySeen, Delayed: delayed,
			KernelTime: seen, ParseErrors: 1, Overruns: 2}, GapsUS: map[string]uint64{"10": clashes, "1000": 1, "+Inf": 3}})
	}
	conn := func(k uint64) ConntrackStats {
		return ConntrackStats{"found": 10 * k, "invalid": k, "insert": 100 * k, "insert_failed": k, "drop": k, "early_drop": 0,
			"clashres": 2 * k, "entries": 370 + k, "search_restart": 0, "chainlength": 0}
	}
	one, half, zero := 1.0, 0.5, 0.0
	for _, c := range []struct {
		cell string
		info emulator.Info
		same bool // the old file has every setting
	}{
		{"default_glibc_none", emulator.Info{Mode: "emulate", Profile: "5.0-5.5", Observer: "nfqueue", Iptables: "nft", VIPs: []string{"10.96.0.10"},
			Settings: emulator.Settings{Probability: &half, WindowUS: 1000, Port: 53, Queue: 53}, StartedAt: started}, false},
		{"default_glibc_delay-aaaa", emulator.Info{Mode: "emulate", Profile: "pre-5.0", DelayMethod: "nfqueue", Observer: "nfqueue", Iptables: "legacy",
			VIPs: []string{"10.96.0.10"}, Settings: emulator.Settings{Probability: &one, WindowUS: 1000, DelayMS: 5, Port: 53, Queue: 53}, StartedAt: started}, true},
		{"default_musl_none", emulator.Info{Mode: "count", Profile: "5.0-5.5", Observer: "nflog", Iptables: "nft", VIPs: []string{"10.96.0.10"},
			Settings: emulator.Settings{Probability: &zero, WindowUS: 500, DelayMS: 2.5, Port: 53, Queue: 53}, StartedAt: started}, false},
	} {
		before := Snapshot{Conntrack: map[string]ConntrackStats{}, Emulator: map[string]emulator.Snapshot{}}
		after := Snapshot{Conntrack: map[string]ConntrackStats{}, Emulator: map[string]emulator.Snapshot{}}
		for i, node := range []string{"lab-control-plane", "lab-worker", "lab-worker2"} {
			k := uint64(i)
			before.Conntrack[node], after.Conntrack[node] = conn(k), conn(3*k+1)
			before.Emulator[node] = snap(c.info, 0, 0, 0, 0, 0)
			after.Emulator[node] = snap(c.info, 1969*k, 5*k, 3*k, 3586*k, 1793*k)
		}
		run := results.RunDir{Dir: t.TempDir()}
		if err := run.WriteCounters(CellCounters(c.cell, before, after)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(run.CountersPath(c.cell))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(old.CountersPath(c.cell))
		if err != nil {
			t.Fatal(err)
		}
		if c.same && !bytes.Equal(got, want) {
			t.Errorf("%s: written now:\n%s\nwritten at 1e17916:\n%s", c.cell, got, want)
		}
		if !c.same {
			// The same but for the fractional settings, now kept.
			var g, w results.Counters
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			for node, n := range g.Nodes {
				for _, r := range []*emulator.Record{n.EmulatorBefore, n.EmulatorAfter} {
					if r.Probability == nil || *r.Probability != *c.info.Probability || r.DelayMS != c.info.DelayMS {
						t.Errorf("%s %s: drop probability %v, delay %v", c.cell, node, r.Probability, r.DelayMS)
					}
				}
				wn := w.Nodes[node]
				for _, pair := range [][2]*emulator.Record{{n.EmulatorBefore, wn.EmulatorBefore}, {n.EmulatorAfter, wn.EmulatorAfter}} {
					if pair[1].Probability == nil {
						pair[0].Probability = nil
					}
					if pair[0].DelayMS != pair[1].DelayMS && pair[1].DelayMS == 0 {
						pair[0].DelayMS = 0
					}
				}
			}
			gb, _ := json.Marshal(g)
			wb, _ := json.Marshal(w)
			if !bytes.Equal(gb, wb) {
				t.Errorf("%s: written now %s\nwritten at 1e17916 %s", c.cell, gb, wb)
			}
		}
	}
}
