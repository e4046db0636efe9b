package collect

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// Kernel 6.18, 2 CPUs (as seen on this machine, with counts put in).
const statWithClashres = `entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
000000f6  00000631 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000001
000000f6  000001ba 00000000 00000000 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 0000000a
`

// Kernel 4.19, 4 CPUs: no clashres column, insert_failed counts the clashes.
const statWithoutClashres = `entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000010  00000000 0000000a 00000000 00000000 00000001 00000000 00000000 00000005 00000003 00000003 00000000 00000000  00000000 00000000 00000000 00000000
00000010  00000000 00000001 00000000 00000000 00000001 00000000 00000000 00000007 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
00000010  00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 0000000c 0000000c 00000000 00000000  00000000 00000000 00000000 00000000
00000010  00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000001 00000000 00000000 00000001 00000000  00000000 00000000 00000000 00000000
`

func TestParseConntrackStat(t *testing.T) {
	s, err := ParseConntrackStat(strings.NewReader(statWithClashres))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]uint64{"entries": 0xf6, "clashres": 0x631 + 0x1ba, "invalid": 0x12, "search_restart": 11, "insert_failed": 0} {
		if s[k] != want {
			t.Errorf("%s = %d, want %d", k, s[k], want)
		}
	}
	if len(s) != 17 {
		t.Errorf("%d columns, want 17", len(s))
	}

	s, err = ParseConntrackStat(strings.NewReader(statWithoutClashres))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]uint64{"entries": 16, "found": 11, "ignore": 4, "insert": 13, "insert_failed": 15, "drop": 15, "early_drop": 1} {
		if s[k] != want {
			t.Errorf("old kernel: %s = %d, want %d", k, s[k], want)
		}
	}
	if _, ok := s["clashres"]; ok {
		t.Error("old kernel: clashres invented")
	}
}

func TestParseConntrackStatRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"no rows":        "entries clashres\n",
		"short row":      "entries clashres\n00000001\n",
		"not hex":        "entries clashres\n00000001 0000000g\n",
		"foreign header": "cpu=0 found=0\n",
	} {
		if _, err := ParseConntrackStat(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

const conntrackS = `cpu=0   	found=0 invalid=2 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=1 clash_resolve=1585 chaintoolong=0 
cpu=1   	found=0 invalid=16 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=10 clash_resolve=442 chaintoolong=0 
`

func TestParseConntrackS(t *testing.T) {
	s, err := ParseConntrackS(strings.NewReader(conntrackS))
	if err != nil {
		t.Fatal(err)
	}
	want := ConntrackStats{"found": 0, "invalid": 18, "insert": 0, "insert_failed": 0, "drop": 0, "early_drop": 0,
		"icmp_error": 0, "search_restart": 11, "clashres": 2027, "chaintoolong": 0}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %v\nwant %v", s, want)
	}
	if _, err := ParseConntrackS(strings.NewReader("cpu=0 found=x\n")); err == nil {
		t.Error("bad value accepted")
	}
	if _, err := ParseConntrackS(strings.NewReader("")); err == nil {
		t.Error("empty output accepted")
	}
	s, err = ParseConntrackS(strings.NewReader("entries 246\n" + conntrackS))
	if err != nil || s["entries"] != 246 {
		t.Errorf("entries line: %v, %v", s["entries"], err)
	}
}

func TestCrossCheck(t *testing.T) {
	proc, _ := ParseConntrackStat(strings.NewReader(statWithClashres))
	tool, _ := ParseConntrackS(strings.NewReader(conntrackS))
	if d := CrossCheck(proc, tool, 0); len(d) != 0 {
		t.Errorf("same counts reported as different: %q", d)
	}
	tool["clashres"] += 5
	if d := CrossCheck(proc, tool, 2); len(d) != 1 || !strings.HasPrefix(d[0], "clashres:") {
		t.Errorf("diffs %q, want one for clashres", d)
	}
	if d := CrossCheck(proc, tool, 5); len(d) != 0 {
		t.Errorf("within tolerance reported: %q", d)
	}
}

func TestDelta(t *testing.T) {
	before := ConntrackStats{"entries": 10, "clashres": 5, "gone": 3}
	after := ConntrackStats{"entries": 4, "clashres": 9, "new": 2}
	want := map[string]int64{"entries": -6, "clashres": 4, "gone": -3, "new": 2}
	if got := Delta(before, after); !reflect.DeepEqual(got, want) {
		t.Errorf("Delta = %v, want %v", got, want)
	}
}

// TestIntegrationConntrackStatInNetns reads a fresh namespace's counters
// (entries 0) while the host's differ, and checks them against conntrack -S
// run in the same namespace.
func TestIntegrationConntrackStatInNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root and ip netns; run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration test cannot run: needs root")
	}
	for _, bin := range []string{"ip", "conntrack"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("integration test cannot run: missing %s in PATH", bin)
		}
	}
	name := "lr-ctstat-" + strings.ReplaceAll(t.Name(), "/", "-")[:12]
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v: %s", err, out)
		}
	})
	s, err := ReadConntrackStatInNetns(NetnsPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if s["entries"] != 0 {
		t.Errorf("fresh namespace has %d entries", s["entries"])
	}
	if _, ok := s["clashres"]; !ok {
		t.Log("this kernel has no clashres column")
	}
	out, err := exec.Command("ip", "netns", "exec", name, "conntrack", "-S").Output()
	if err != nil {
		t.Fatalf("conntrack -S: %v", err)
	}
	tool, err := ParseConntrackS(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if d := CrossCheck(s, tool, 0); len(d) != 0 {
		t.Errorf("/proc and conntrack -S disagree in an idle namespace: %q", d)
	}
	// The calling thread is back in the host namespace.
	host, err := ReadConntrackStat()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("netns entries %d, host entries %d", s["entries"], host["entries"])
}
