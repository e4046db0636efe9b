package results

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oldRun holds files written by labrun at 1e17916 (testdata's README says how).
var oldRun = RunDir{Dir: filepath.Join("testdata", "written-by-1e17916")}

// sameBytes checks that v, read from path, encodes to the bytes path holds:
// every field was read (nothing dropped, nothing added) and writing it again
// changes nothing on disk.
func sameBytes(t *testing.T, path string, v any) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got = append(got, '\n'); !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s: written again, line %d is %q, was %q", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: written again, %d lines, was %d", path, len(gl), len(wl))
	}
}

func TestCaptureSummaryOfAnOldRun(t *testing.T) {
	c, ok, err := oldRun.ReadCaptureSummary("default_glibc_none")
	if err != nil || !ok {
		t.Fatalf("ReadCaptureSummary: %v %v", ok, err)
	}
	sameBytes(t, oldRun.CaptureSummaryPath("default_glibc_none"), &c)
	if c.Queries != 6 || c.SamePortPairs != 1 || c.DifferentPortPairs != 1 || c.ResendsAt5s != 1 || c.Unanswered != 1 ||
		c.Lookups.Count != 3 || len(c.Pods) != 2 || c.Pods[1].IP.String() != "10.244.2.9" || c.Copies != 4 || c.KernelDropped != 3 ||
		c.Filters["worker3"] != "udp port 53" || len(c.Lookups.Patterns) != 2 || c.Resends[0].AfterMS != 5003.03 {
		t.Errorf("capture summary = %+v", c)
	}
	counts := c.Counts()
	if counts.Queries != 6 || counts.Lookups.Count != 3 || counts.QueriesPerLookup() != 2 {
		t.Errorf("counts = %+v", counts)
	}
	// `labrun pcap --json --lookups` is the same report, with its lookup list.
	var r CaptureReport
	path := filepath.Join(oldRun.Dir, "pcap-lookups.json")
	if err := ReadJSON(path, &r); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, path, &r)
	if len(r.LookupList) == 0 || r.LookupList[0].Client != "10.244.1.5" {
		t.Errorf("lookup list = %+v", r.LookupList)
	}
}

// summary.json keeps a digest of the capture under the capture's own names.
func TestCaptureCountsAreTheReportsFields(t *testing.T) {
	c, _, err := oldRun.ReadCaptureSummary("default_glibc_none")
	if err != nil {
		t.Fatal(err)
	}
	var full, digest map[string]any
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, &full)
	b, _ = json.Marshal(c.Counts())
	_ = json.Unmarshal(b, &digest)
	for k, v := range digest {
		if k == "lookups" {
			if got, want := v.(map[string]any)["count"], full["lookups"].(map[string]any)["count"]; got != want {
				t.Errorf("lookups.count = %v, the report's %v", got, want)
			}
			continue
		}
		if full[k] != v {
			t.Errorf("%s = %v, the report's %v", k, v, full[k])
		}
	}
	if len(digest) != 7 {
		t.Errorf("digest has %d fields: %v", len(digest), digest)
	}
}

func TestCountersOfAnOldRun(t *testing.T) {
	for _, cell := range []string{"default_glibc_none", "default_glibc_delay-aaaa", "default_musl_none", "bare_glibc_none"} {
		c, ok, err := oldRun.ReadCounters(cell)
		if err != nil || !ok {
			t.Fatalf("ReadCounters(%s): %v %v", cell, ok, err)
		}
		sameBytes(t, oldRun.CountersPath(cell), &c)
		w := c.Nodes["lab-worker"]
		before, after, emu := w.EmulatorCounts()
		if emu != (cell != "bare_glibc_none") {
			t.Errorf("%s: emulator %v", cell, emu)
		}
		if !emu {
			continue
		}
		if before.Seen != 0 || after.Seen != 1969 || after.Dropped != 3 || after.Delayed != 1793 || after.Overruns != 2 ||
			w.EmulatorAfter.Port != 53 || w.EmulatorAfter.WindowUS == 0 {
			t.Errorf("%s: emulator before %+v after %+v", cell, w.EmulatorBefore, w.EmulatorAfter)
		}
		// What the old reader kept of the settings: only whole numbers.
		p := w.EmulatorAfter.Probability
		switch cell {
		case "default_glibc_none":
			if p != nil {
				t.Errorf("%s: drop probability %v, the file has none", cell, *p)
			}
		case "default_glibc_delay-aaaa":
			if p == nil || *p != 1 || w.EmulatorAfter.DelayMS != 5 {
				t.Errorf("%s: drop probability %v, delay %v; want 1, 5", cell, p, w.EmulatorAfter.DelayMS)
			}
		case "default_musl_none":
			if p == nil || *p != 0 || w.EmulatorAfter.DelayMS != 0 {
				t.Errorf("%s: drop probability %v, delay %v; want 0, none", cell, p, w.EmulatorAfter.DelayMS)
			}
		}
	}
}
