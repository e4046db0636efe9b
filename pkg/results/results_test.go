package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/emulator"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/scenario"
)

func TestRoundTrip(t *testing.T) {
	run, err := Create(t.TempDir(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	st := Status{Cell: "default_glibc_none", State: Incomplete, Reason: "pod probe-1: summary says 10, collected 9", Probes: 2, Expected: 10, Collected: 9}
	if err := run.WriteStatus(st); err != nil {
		t.Fatal(err)
	}
	got, ok, err := run.ReadStatus(st.Cell)
	if err != nil || !ok || got != st {
		t.Errorf("ReadStatus = %+v, %v, %v; want %+v", got, ok, err, st)
	}
	if _, ok, err := run.ReadStatus("absent"); ok || err != nil {
		t.Errorf("absent status: ok=%v err=%v", ok, err)
	}
	cells, err := run.StatusCells()
	if err != nil || strings.Join(cells, ",") != st.Cell {
		t.Errorf("StatusCells = %v, %v", cells, err)
	}

	c := Counters{Cell: st.Cell, Nodes: map[string]NodeCounters{
		"lab-worker": {Before: map[string]uint64{"insert_failed": 1}, After: map[string]uint64{"insert_failed": 5},
			EmulatorBefore: &emulator.Record{}, EmulatorAfter: &emulator.Record{Counts: emulator.Counts{Dropped: 7}}},
	}}
	if err := run.WriteCounters(c); err != nil {
		t.Fatal(err)
	}
	gc, ok, err := run.ReadCounters(st.Cell)
	if err != nil || !ok || gc.Nodes["lab-worker"].EmulatorAfter.Dropped != 7 {
		t.Errorf("ReadCounters = %+v, %v, %v", gc, ok, err)
	}

	f, err := run.CreateRaw(st.Cell, "probe-1")
	if err != nil {
		t.Fatal(err)
	}
	enc := sample.NewEncoder(f)
	for i := range 3 {
		enc.Sample(&sample.Sample{DurationUS: int64(i), Resolver: "glibc", Name: "a", NameKind: sample.Short, Result: sample.OK, Seq: uint64(i)})
	}
	enc.Summary(&sample.Summary{Resolver: "glibc", Lookups: 3, Complete: true})
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if files, _ := run.RawFiles(st.Cell); len(files) != 0 {
		t.Errorf("raw file visible before Commit: %v", files)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	var sum int64
	probes, err := run.ReadSamples(st.Cell, func(s *sample.Sample) { sum += s.DurationUS })
	if err != nil || len(probes) != 1 || probes[0].Samples != 3 || probes[0].Summary == nil || probes[0].Summary.Lookups != 3 || sum != 3 {
		t.Errorf("ReadSamples = %+v, %v (sum %d)", probes, err, sum)
	}
}

func TestRefusesBadInput(t *testing.T) {
	run, _ := Create(t.TempDir(), "r")
	if err := run.WriteStatus(Status{Cell: "c", State: NotRun}); err == nil {
		t.Error("not-run without a reason: want an error")
	}
	if err := run.WriteStatus(Status{Cell: "../x", State: Complete}); err == nil {
		t.Error("cell name with a slash: want an error")
	}
	if _, err := run.CreateRaw("c", ".hidden"); err == nil {
		t.Error("hidden pod file: want an error")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("Open of a missing directory: want an error")
	}
	if err := os.MkdirAll(filepath.Dir(run.StatusPath("x")), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(run.StatusPath("x"), []byte(`{"cell":"x","state":"complete","surprise":1}`), 0o644)
	if _, _, err := run.ReadStatus("x"); err == nil {
		t.Error("unknown field in a status file: want an error")
	}
}

func TestAtomicAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateAtomic(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	f.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("after Abort the directory holds %v", entries)
	}
}

func TestScenarioRoundTrip(t *testing.T) {
	run, _ := Create(t.TempDir(), "r")
	s, err := scenario.Parse("s.yaml", []byte("apiVersion: labrun.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nworkload: {resolvers: [glibc, musl]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.WriteScenario(s); err != nil {
		t.Fatal(err)
	}
	back, err := run.ReadScenario()
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Expand()) != 2 {
		t.Errorf("recorded scenario expands to %d cells, want 2", len(back.Expand()))
	}
}

func TestReadCaptureSummaryOfPcapJSON(t *testing.T) {
	run, _ := Create(t.TempDir(), "r")
	// The shape of `labrun pcap --json` (pkg/analyze/capture), abridged.
	pcap := `{"link_type":"Ethernet","packets":40,"queries":20,"answers":18,"unmatched_answers":0,"same_port_pairs":9,
"different_port_pairs":1,"pair_window_us":1000,"resends":[{"name":"a.","type":"AAAA","src_port":4000,"after_ms":5001}],
"resends_at_5s_multiples":1,"unanswered":2,"unanswered_queries":[],"lookups":{"count":10,"by_result":{"ok":10},
"names_tried":{"1":10},"queries":{"2":10},"patterns":[{"names":["a."],"count":10}]}}`
	if err := WriteFile(run.CaptureSummaryPath("c"), []byte(pcap)); err != nil {
		t.Fatal(err)
	}
	c, ok, err := run.ReadCaptureSummary("c")
	if err != nil || !ok {
		t.Fatalf("ReadCaptureSummary: %v %v", ok, err)
	}
	if c.Queries != 20 || c.SamePortPairs != 9 || c.ResendsAt5s != 1 || c.Lookups.Count != 10 || c.Counts().QueriesPerLookup() != 2 {
		t.Errorf("capture summary = %+v", c)
	}
}

func TestCheckProbes(t *testing.T) {
	ok := &sample.Summary{Lookups: 2, Complete: true}
	for _, tt := range []struct {
		probes []Probe
		want   string
	}{
		{nil, "no sample files"},
		{[]Probe{{File: "a", Samples: 2, Summary: ok}}, ""},
		{[]Probe{{File: "a", Samples: 1, Summary: ok}}, "a: summary says 2 lookups, file holds 1"},
		{[]Probe{{File: "a", Samples: 2}}, "a: no summary line"},
		{[]Probe{{File: "a", Samples: 2, Summary: &sample.Summary{Lookups: 2}}}, "a: the probe stopped early"},
	} {
		if got := CheckProbes(tt.probes); got != tt.want {
			t.Errorf("CheckProbes = %q, want %q", got, tt.want)
		}
	}
}

func TestPending(t *testing.T) {
	run, _ := Create(t.TempDir(), "r")
	run.WriteStatus(Status{Cell: "a", State: Complete})
	run.WriteStatus(Status{Cell: "b", State: Incomplete, Reason: "interrupted"})
	run.WriteStatus(Status{Cell: "c", State: NotRun, Reason: "not applicable"})
	got, err := run.Pending([]string{"a", "b", "c", "d"})
	if err != nil || strings.Join(got, ",") != "b,d" {
		t.Errorf("Pending = %v, %v; want b,d", got, err)
	}
}
