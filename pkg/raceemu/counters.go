package raceemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"labrun.dev/labrun/pkg/results/emulator"
)

// Counters are the agent's running counts. Race-queue packets are those that
// open a connection toward a VIP; delay-queue packets are every UDP packet
// toward a VIP, seen before conntrack.
type Counters struct {
	Seen        atomic.Uint64 // race queue: packets seen
	Clashes     atomic.Uint64 // race queue: packets within the window of an earlier one of their 5-tuple
	Dropped     atomic.Uint64 // race queue: dropped (emulate)
	WouldDrop   atomic.Uint64 // race queue: would have been dropped (count-only)
	Passed      atomic.Uint64 // race queue: accepted
	DelaySeen   atomic.Uint64 // delay queue: packets seen
	Delayed     atomic.Uint64 // delay queue: AAAA queries held
	ParseErrors atomic.Uint64 // packets the agent could not read (accepted)
	Errors      atomic.Uint64 // verdicts that could not be sent
	KernelTime  atomic.Uint64 // race-queue packets timed by the kernel's timestamp (else by the agent's clock)
	Gaps        gapHistogram  // race queue: time since the previous packet of the same 5-tuple
}

// gapBoundsUS are the upper bounds, in µs, of the gap histogram's buckets:
// around the default window of 1 ms, fine enough to see where glibc's A and
// AAAA fall (tens of µs apart when sent by one sendmmsg).
var gapBoundsUS = []int64{10, 30, 100, 300, 1000, 3000, 10000}

// gapHistogram counts gaps per bucket; the last bucket is "more than the last bound".
type gapHistogram [8]atomic.Uint64

func (h *gapHistogram) add(d time.Duration) {
	us := d.Microseconds()
	for i, b := range gapBoundsUS {
		if us <= b {
			h[i].Add(1)
			return
		}
	}
	h[len(gapBoundsUS)].Add(1)
}

// snapshot returns the counts keyed by upper bound ("le" as in Prometheus,
// not cumulative), "+Inf" for the last.
func (h *gapHistogram) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(h))
	for i, b := range gapBoundsUS {
		m[strconv.FormatInt(b, 10)] = h[i].Load()
	}
	m["+Inf"] = h[len(gapBoundsUS)].Load()
	return m
}

// prometheus writes s in the Prometheus text format.
func prometheus(w io.Writer, s emulator.Snapshot) {
	for _, m := range []struct {
		name, help string
		v          uint64
	}{
		{"seen", "UDP packets toward the DNS VIP that opened a connection, seen by the race emulator", s.Seen},
		{"clashes", "packets seen within the window of an earlier packet of their 5-tuple", s.Clashes},
		{"dropped", "packets dropped by the race emulator", s.Dropped},
		{"would_drop", "packets the race emulator would have dropped (count-only mode)", s.WouldDrop},
		{"passed", "packets the race emulator accepted", s.Passed},
		{"delay_seen", "UDP packets toward the DNS VIP seen by the AAAA delayer", s.DelaySeen},
		{"delayed", "AAAA queries held before being accepted", s.Delayed},
		{"parse_errors", "queued packets the agent could not read (accepted)", s.ParseErrors},
		{"errors", "verdicts the agent could not send", s.Errors},
		{"overruns", "times the kernel could not deliver queued packets to the agent (failed open)", s.Overruns},
		{"kernel_errors", "error messages from the kernel's queue", s.KernelErrors},
	} {
		fmt.Fprintf(w, "# HELP labagent_%s_total %s.\n# TYPE labagent_%s_total counter\nlabagent_%s_total %d\n", m.name, m.help, m.name, m.name, m.v)
	}
	fmt.Fprintf(w, "# HELP labagent_gap_seconds Time between a packet and the previous one of its 5-tuple, race queue.\n# TYPE labagent_gap_seconds histogram\n")
	var cum uint64
	for _, b := range gapBoundsUS {
		cum += s.GapsUS[strconv.FormatInt(b, 10)]
		fmt.Fprintf(w, "labagent_gap_seconds_bucket{le=\"%g\"} %d\n", float64(b)/1e6, cum)
	}
	cum += s.GapsUS["+Inf"]
	fmt.Fprintf(w, "labagent_gap_seconds_bucket{le=\"+Inf\"} %d\nlabagent_gap_seconds_count %d\n", cum, cum)
	fmt.Fprintf(w, "# HELP labagent_info The agent's configuration.\n# TYPE labagent_info gauge\n"+
		"labagent_info{mode=%q,profile=%q,iptables=%q,delay_method=%q} 1\n", s.Mode, s.Profile, s.Iptables, s.DelayMethod)
	if s.Probability != nil {
		fmt.Fprintf(w, "# HELP labagent_drop_probability Probability that a clash drops.\n# TYPE labagent_drop_probability gauge\nlabagent_drop_probability %g\n", *s.Probability)
	}
}

// metricsHandler serves /counters (JSON) and /metrics (Prometheus text).
func metricsHandler(snap func() emulator.Snapshot) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/counters", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(snap())
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		prometheus(w, snap())
	})
	return mux
}

// listenMetrics listens on addr: "host:port", or "unix:/path" for a socket
// file, which a test or a runner can reach from another network namespace.
func listenMetrics(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path) // a stale socket file of a dead agent
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	return l, nil
}

// FetchCounters reads a running agent's counters from its metrics address.
func FetchCounters(addr string) (emulator.Snapshot, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + addr + "/counters"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		url = "http://labagent/counters"
	}
	resp, err := client.Get(url)
	if err != nil {
		return emulator.Snapshot{}, fmt.Errorf("fetch counters from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return emulator.Snapshot{}, fmt.Errorf("fetch counters from %s: %s", addr, resp.Status)
	}
	var s emulator.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return emulator.Snapshot{}, fmt.Errorf("decode counters from %s: %w", addr, err)
	}
	return s, nil
}
