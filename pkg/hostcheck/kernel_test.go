package hostcheck

import (
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const sampleConfig = `#
# Automatically generated file; DO NOT EDIT.
# CONFIG_MODULES is not set
# CONFIG_IP_VS is not set
CONFIG_VXLAN=y
CONFIG_NETFILTER_XT_TARGET_NFQUEUE=y
CONFIG_OPENVSWITCH=m
CONFIG_LOCALVERSION="-lab"
# CONFIG_NET_SCH_NETEM is not set
`

func TestParseKernelConfig(t *testing.T) {
	cfg, err := parseKernelConfig(strings.NewReader(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := kernelConfig{"CONFIG_VXLAN": "y", "CONFIG_NETFILTER_XT_TARGET_NFQUEUE": "y", "CONFIG_OPENVSWITCH": "m", "CONFIG_LOCALVERSION": "-lab"}
	if len(cfg) != len(want) {
		t.Errorf("parsed %v, want %v", cfg, want)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if _, set := cfg["CONFIG_IP_VS"]; set {
		t.Error("CONFIG_IP_VS is not set, but parsed as set")
	}
}

func TestDecide(t *testing.T) {
	cfg, _ := parseKernelConfig(strings.NewReader(sampleConfig))
	notTried := live{state: Unknown, seen: "not tried", notTried: true}
	for _, tc := range []struct {
		name             string
		f                Feature
		l                live
		haveCfg, modular bool
		state            State
		reason           string
	}{
		{"live present wins", IPVS, live{state: Present, seen: "/proc/net/ip_vs exists"}, true, false, Present, ""},
		{"absent, config explains", IPVS, live{state: Absent, seen: "no /proc/net/ip_vs"}, true, false, Absent, "kernel lacks IPVS: CONFIG_IP_VS not set"},
		{"absent, module not loadable", OpenvSwitch, live{state: Absent, seen: "no family"}, true, false, Absent, "kernel lacks openvswitch: CONFIG_OPENVSWITCH=m but this kernel loads no modules"},
		{"absent, module not loaded", OpenvSwitch, live{state: Absent, seen: "no family"}, true, true, Absent, "kernel lacks openvswitch: CONFIG_OPENVSWITCH=m and the module is not loaded (no family)"},
		{"absent, no config, no modules", IPVS, live{state: Absent, seen: "no /proc/net/ip_vs"}, false, false, Absent, "kernel lacks IPVS: CONFIG_IP_VS not built in (no /proc/net/ip_vs; this kernel loads no modules)"},
		{"absent, no config, modules", IPVS, live{state: Absent, seen: "no /proc/net/ip_vs"}, false, true, Absent, "kernel lacks IPVS: no /proc/net/ip_vs"},
		{"not tried, built in", VXLAN, notTried, true, false, Present, ""},
		{"not tried, not set", Netem, notTried, true, false, Absent, "kernel lacks netem: CONFIG_NET_SCH_NETEM not set"},
		{"not tried, no config", Netem, notTried, false, true, Unknown, "kernel support for netem unknown: not tried"},
		{"tried, inconclusive, config ignored", VXLAN, live{state: Unknown, seen: "ip: permission denied"}, true, false, Unknown, "kernel support for VXLAN unknown: ip: permission denied"},
	} {
		got := decide(tc.f, tc.l, cfg, tc.haveCfg, tc.modular)
		if got.State != tc.state || got.Reason() != tc.reason {
			t.Errorf("%s: got %s %q, want %s %q", tc.name, got.State, got.Reason(), tc.state, tc.reason)
		}
	}
}

func TestClassify(t *testing.T) {
	netem := tries[0]
	argv := []string{"tc", "qdisc", "add"}
	if l := classify(netem, argv, "", nil); l.state != Present {
		t.Errorf("success: %+v", l)
	}
	if l := classify(netem, argv, "Error: Specified qdisc kind is unknown.", errors.New("exit status 2")); l.state != Absent || !strings.Contains(l.seen, "qdisc kind is unknown") {
		t.Errorf("unknown qdisc: %+v", l)
	}
	if l := classify(netem, argv, "RTNETLINK answers: Operation not permitted", errors.New("exit status 2")); l.state != Unknown {
		t.Errorf("a failure that says nothing of the kernel must stay unknown: %+v", l)
	}
	_, err := exec.LookPath("no-such-tool-labrun")
	if l := classify(netem, []string{"no-such-tool-labrun"}, "", &exec.Error{Name: "no-such-tool-labrun", Err: err}); l.state != Unknown || !strings.Contains(l.seen, "not installed") {
		t.Errorf("missing tool: %+v", l)
	}
}

// fakeProc writes a proc folder with the given files (config is gzipped).
func fakeProc(t *testing.T, config string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range append(files, "sys/kernel/osrelease") {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("6.18.0-test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if config != "" {
		f, err := os.Create(filepath.Join(dir, "config.gz"))
		if err != nil {
			t.Fatal(err)
		}
		z := gzip.NewWriter(f)
		z.Write([]byte(config))
		z.Close()
		f.Close()
	}
	return dir
}

func noGenl() ([]string, error)  { return []string{"nlctrl", "TASKSTATS"}, nil }
func ovsGenl() ([]string, error) { return []string{"nlctrl", "ovs_datapath", "ovs_vport"}, nil }

func TestProbeWithoutRootGoesByConfig(t *testing.T) {
	h := host{proc: fakeProc(t, sampleConfig), genlFamilies: noGenl}
	k, err := h.probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.18.0-test" {
		t.Errorf("release %q", k.Release)
	}
	want := map[Feature]State{IPVS: Absent, Netem: Absent, OpenvSwitch: Absent, IPIP: Absent, VXLAN: Present, NFQueue: Present}
	for f, s := range want {
		if got := k.Finding(f); got.State != s {
			t.Errorf("%s: %s (%s), want %s", f, got.State, got.Evidence, s)
		}
	}
	if r := k.Finding(IPVS).Reason(); r != "kernel lacks IPVS: CONFIG_IP_VS not set" {
		t.Errorf("IPVS reason %q", r)
	}
}

func TestProbeSeesLiveFeatures(t *testing.T) {
	// /proc/net/ip_vs and ovs_datapath present although the (stale) config
	// says otherwise: what the running kernel shows wins.
	h := host{proc: fakeProc(t, sampleConfig, "net/ip_vs", "modules"), root: true, genlFamilies: ovsGenl,
		tryInNetns: func(context.Context) (map[Feature]live, error) {
			return map[Feature]live{
				Netem:   {state: Present, seen: "tc ok"},
				IPIP:    {state: Absent, seen: "Unknown device type"},
				VXLAN:   {state: Present, seen: "ip ok"},
				NFQueue: {state: Unknown, seen: "iptables failed oddly"},
			}, nil
		}}
	k, err := h.probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[Feature]State{IPVS: Present, Netem: Present, OpenvSwitch: Present, IPIP: Absent, VXLAN: Present, NFQueue: Unknown}
	for f, s := range want {
		if got := k.Finding(f); got.State != s {
			t.Errorf("%s: %s (%s), want %s", f, got.State, got.Evidence, s)
		}
	}
}

func TestProbeFailsWhenNamespaceCannotBeMade(t *testing.T) {
	h := host{proc: fakeProc(t, ""), root: true, genlFamilies: noGenl,
		tryInNetns: func(context.Context) (map[Feature]live, error) {
			return nil, errors.New("ip netns add: permission denied")
		}}
	if _, err := h.probe(context.Background()); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("probe: %v", err)
	}
}
