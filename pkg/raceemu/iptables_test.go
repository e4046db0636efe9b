package raceemu

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/iptables"
	"labrun.dev/labrun/pkg/results/emulator"
)

func TestInstallCommands(t *testing.T) {
	race, delay := uint16(53), uint16(54)
	r := Rules{
		VIPs:       []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00::a")},
		Port:       53,
		RaceQueue:  &race,
		DelayQueue: &delay,
	}
	var got []string
	for _, c := range r.InstallCommands(iptables.NewBackend("nft")) {
		got = append(got, c.String())
	}
	want := []string{
		"iptables-nft -w -t raw -N LABRUN-AGENT",
		"iptables-nft -w -t raw -A LABRUN-AGENT -d 10.96.0.10 -p udp --dport 53 -m comment --comment labrun-agent -j NFQUEUE --queue-num 54 --queue-bypass",
		"iptables-nft -w -t raw -I PREROUTING 1 ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT",
		"iptables-nft -w -t raw -I OUTPUT 1 -m comment --comment labrun-agent -j LABRUN-AGENT",
		"iptables-nft -w -t mangle -N LABRUN-AGENT",
		"iptables-nft -w -t mangle -A LABRUN-AGENT -d 10.96.0.10 -p udp --dport 53 -m conntrack --ctstate NEW -m comment --comment labrun-agent -j NFQUEUE --queue-num 53 --queue-bypass",
		"iptables-nft -w -t mangle -I PREROUTING 1 ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT",
		"iptables-nft -w -t mangle -I OUTPUT 1 -m comment --comment labrun-agent -j LABRUN-AGENT",
		"ip6tables-nft -w -t raw -N LABRUN-AGENT",
		"ip6tables-nft -w -t raw -A LABRUN-AGENT -d fd00::a -p udp --dport 53 -m comment --comment labrun-agent -j NFQUEUE --queue-num 54 --queue-bypass",
		"ip6tables-nft -w -t raw -I PREROUTING 1 ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT",
		"ip6tables-nft -w -t raw -I OUTPUT 1 -m comment --comment labrun-agent -j LABRUN-AGENT",
		"ip6tables-nft -w -t mangle -N LABRUN-AGENT",
		"ip6tables-nft -w -t mangle -A LABRUN-AGENT -d fd00::a -p udp --dport 53 -m conntrack --ctstate NEW -m comment --comment labrun-agent -j NFQUEUE --queue-num 53 --queue-bypass",
		"ip6tables-nft -w -t mangle -I PREROUTING 1 ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT",
		"ip6tables-nft -w -t mangle -I OUTPUT 1 -m comment --comment labrun-agent -j LABRUN-AGENT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("install commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestInstallCommandsCountOnlyLogs(t *testing.T) {
	q := uint16(53)
	r := Rules{VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Port: 53, RaceQueue: &q, RaceLog: true}
	cmds := r.InstallCommands(iptables.NewBackend("legacy"))
	want := "iptables-legacy -w -t mangle -A LABRUN-AGENT -d 10.96.0.10 -p udp --dport 53 -m conntrack --ctstate NEW -m comment --comment labrun-agent -j NFLOG --nflog-group 53 --nflog-size 512"
	if len(cmds) != 4 || cmds[1].String() != want {
		t.Errorf("count-only rules: %v\nwant the second to be %s", cmds, want)
	}
}

// A mangle table as iptables-nft -S prints it on a kind node with a stale agent.
const mangleListing = `-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-N KUBE-IPTABLES-HINT
-N LABRUN-AGENT
-A PREROUTING ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT
-A PREROUTING -i eth0 -j MARK --set-xmark 0x1/0xffffffff
-A OUTPUT -m comment --comment labrun-agent -j LABRUN-AGENT
-A OUTPUT -j LABRUN-AGENT
-A LABRUN-AGENT -d 10.96.0.10/32 -p udp -m udp --dport 53 -m conntrack --ctstate NEW -m comment --comment labrun-agent -j NFQUEUE --queue-num 53 --queue-bypass
`

func TestRemoveCommands(t *testing.T) {
	var got []string
	for _, c := range RemoveCommands("iptables-nft", "mangle", []byte(mangleListing)) {
		got = append(got, c.String())
	}
	want := []string{
		"iptables-nft -w -t mangle -D PREROUTING ! -i lo -m comment --comment labrun-agent -j LABRUN-AGENT",
		"iptables-nft -w -t mangle -D OUTPUT -m comment --comment labrun-agent -j LABRUN-AGENT",
		"iptables-nft -w -t mangle -D OUTPUT -j LABRUN-AGENT",
		"iptables-nft -w -t mangle -F LABRUN-AGENT",
		"iptables-nft -w -t mangle -X LABRUN-AGENT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("remove commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cmds := RemoveCommands("iptables", "raw", []byte("-P PREROUTING ACCEPT\n-A PREROUTING -j CT --notrack\n")); len(cmds) != 0 {
		t.Errorf("removed rules that are not ours: %v", cmds)
	}
}

func fakeRunner(outputs map[string]string) iptables.Runner {
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		key := strings.Join(append([]string{name}, args...), " ")
		out, ok := outputs[key]
		if !ok {
			return nil, errors.New("not found: " + key)
		}
		return []byte(out), nil
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"emulate":               {Race: RaceEmulate},
		"count-only":            {Race: RaceCountOnly},
		"delay-aaaa":            {DelayAAAA: true},
		"emulate+delay-aaaa":    {Race: RaceEmulate, DelayAAAA: true},
		"delay-aaaa+count-only": {Race: RaceCountOnly, DelayAAAA: true},
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "drop", "emulate+count-only", "emulate+"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
	if s := (Mode{Race: RaceEmulate, DelayAAAA: true}).String(); s != "emulate+delay-aaaa" {
		t.Errorf("String = %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Port: 53, Window: 1, Mode: Mode{Race: RaceEmulate}, Iptables: "auto"}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	bad := Config{Mode: Mode{Race: RaceEmulate, DelayAAAA: true}, Queue: 65535, Iptables: "ufw"}
	err := bad.validate()
	for _, want := range []string{"no VIP", "port", "window", "delay", "65535", "ufw"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v; want it to mention %q", err, want)
		}
	}
}

func TestMetricsHandler(t *testing.T) {
	snap := func() emulator.Snapshot {
		p := 1.0
		return emulator.Snapshot{
			Info:   emulator.Info{Mode: "emulate", Profile: string(ProfilePre50), Settings: emulator.Settings{Probability: &p}},
			Counts: emulator.Counts{Seen: 7, Dropped: 3},
		}
	}
	h := metricsHandler(snap)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/counters", nil))
	if body := rec.Body.String(); !strings.Contains(body, `"seen": 7`) || !strings.Contains(body, `"dropped": 3`) {
		t.Errorf("/counters: %s", body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "labagent_dropped_total 3\n") || !strings.Contains(body, `labagent_info{mode="emulate",profile="pre-5.0"`) {
		t.Errorf("/metrics: %s", body)
	}
}

func TestGapHistogram(t *testing.T) {
	var h gapHistogram
	for _, d := range []time.Duration{0, 10 * time.Microsecond, 11 * time.Microsecond, 999 * time.Microsecond, time.Second} {
		h.add(d)
	}
	got := h.snapshot()
	want := map[string]uint64{"10": 2, "30": 1, "100": 0, "300": 0, "1000": 1, "3000": 0, "10000": 0, "+Inf": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("histogram %v, want %v", got, want)
	}
	var b strings.Builder
	prometheus(&b, emulator.Snapshot{GapsUS: got})
	for _, line := range []string{`labagent_gap_seconds_bucket{le="1e-05"} 2`, `labagent_gap_seconds_bucket{le="0.001"} 4`, `labagent_gap_seconds_bucket{le="+Inf"} 5`, "labagent_gap_seconds_count 5"} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("prometheus output lacks %q:\n%s", line, b.String())
		}
	}
}
