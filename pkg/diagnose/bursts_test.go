package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func openTestdata(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseProbeLog(t *testing.T) {
	p := Probe{Pod: "probe-n0-v0-t0", Node: "w1", Variant: Variants[0], Target: Target{Name: TargetVIP, IP: "10.96.0.10"}}
	b := ParseProbeLog(p, openTestdata(t, "measure/probe-delayed.log"))
	if b.Lookups != 5 || b.Delayed != 3 || b.Retried != 2 || b.Timeouts != 1 || !b.Complete || b.Problem != "" {
		t.Errorf("got %+v", b)
	}
	if b.P50MS != 1500 || b.MaxMS != 10003 || b.FirstNS != 1764979200000000000 || b.LastNS != 1764979200300000000+10003000*1000 {
		t.Errorf("times: p50 %v max %v first %d last %d", b.P50MS, b.MaxMS, b.FirstNS, b.LastNS)
	}
	b = ParseProbeLog(p, openTestdata(t, "measure/probe-cut.log"))
	if b.Complete || b.Lookups != 1 || !strings.Contains(b.Problem, "no summary line") || !strings.Contains(b.Problem, "signal: terminated") {
		t.Errorf("cut log: %+v", b)
	}
}

func TestCounters(t *testing.T) {
	snaps, err := ParseCounterLog(openTestdata(t, "measure/counters-5.4.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 { // the last one is cut: skipped
		t.Fatalf("%d snapshots", len(snaps))
	}
	// The window starts after the second snapshot and ends before the third.
	nc := AroundWindow("w1", snaps, 1764979200100000000, 1764979220000000000)
	if nc.Clashres || nc.Delta["insert_failed"] != (0x15+0x1a)-(1+2) || nc.Delta["entries"] != 0x50-0x41 {
		t.Errorf("5.4: %+v", nc)
	}
	if s := nc.Summary(); !strings.Contains(s, "insert_failed +44") || !strings.Contains(s, "no clashres column") {
		t.Errorf("5.4 summary: %s", s)
	}
	snaps, err = ParseCounterLog(openTestdata(t, "measure/counters-6.18.log"))
	if err != nil {
		t.Fatal(err)
	}
	nc = AroundWindow("w2", snaps, 1764979200000000000, 1764979220000000000)
	if !nc.Clashres || nc.Delta["clashres"] != 0x2a-3 || nc.Delta["insert_failed"] != 0 {
		t.Errorf("6.18: %+v", nc)
	}
	if s := nc.Summary(); !strings.Contains(s, "clashres +39") {
		t.Errorf("6.18 summary: %s", s)
	}
	if nc := AroundWindow("w3", snaps, 1764979100000000000, 1764979220000000000); nc.Delta != nil || !strings.Contains(nc.Note, "no snapshot before and after") {
		t.Errorf("window before the first snapshot: %+v", nc)
	}
}

// musl resends a lost query after timeout/attempts (2.5 s by default): a
// 2.5 s lookup waited for a retry under musl, not under glibc.
func TestRetryThreshold(t *testing.T) {
	log := `{"type":"sample","start_ns":1,"duration_us":2504000,"resolver":"musl","name":"kubernetes.default","name_kind":"short","result":"ok","answers":1,"seq":0}
{"type":"summary","resolver":"musl","lookups":1,"by_result":{"ok":1},"complete":true}
`
	musl := ParseProbeLog(Probe{Variant: Variants[3]}, strings.NewReader(log))
	glibc := ParseProbeLog(Probe{Variant: Variants[0]}, strings.NewReader(log))
	if musl.Retried != 1 || glibc.Retried != 0 || musl.Delayed != 1 || glibc.Delayed != 1 {
		t.Errorf("musl %+v, glibc %+v", musl, glibc)
	}
	// A pod admitted with timeout:2: glibc's 2.5 s lookup waited for a retry.
	two := Probe{Variant: Variants[0], RetryUS: RetryThresholdUS("glibc", []corev1.PodDNSConfigOption{{Name: "timeout", Value: ptr.To("2")}})}
	if b := ParseProbeLog(two, strings.NewReader(log)); b.Retried != 1 {
		t.Errorf("glibc with timeout:2: %+v", b)
	}
}

func TestRetryThresholdUS(t *testing.T) {
	opt := func(kv ...string) []corev1.PodDNSConfigOption {
		var out []corev1.PodDNSConfigOption
		for i := 0; i < len(kv); i += 2 {
			out = append(out, corev1.PodDNSConfigOption{Name: kv[i], Value: ptr.To(kv[i+1])})
		}
		return out
	}
	for _, tc := range []struct {
		backend string
		opts    []corev1.PodDNSConfigOption
		want    int64
	}{
		{"glibc", nil, 4_500_000},
		{"musl", nil, 2_000_000},
		{"musl", opt("timeout", "3", "attempts", "3"), 800_000}, // 1 s interval, a fifth of it as tolerance
		{"glibc", opt("timeout", "60"), 29_500_000},             // capped at 30 s
		{"glibc", append(opt("timeout", "x"), corev1.PodDNSConfigOption{Name: "ndots", Value: ptr.To("5")}), 4_500_000},
	} {
		if got := RetryThresholdUS(tc.backend, tc.opts); got != tc.want {
			t.Errorf("%s %v: %d, want %d", tc.backend, tc.opts, got, tc.want)
		}
	}
}
