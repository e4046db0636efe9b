package diagnose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/sample"
)

// Burst is what one probe pod measured.
type Burst struct {
	Probe
	Lookups uint64 `json:"lookups"`
	Delayed uint64 `json:"delayedOver1s"` // lookups of 1 s or more
	// Retried are the lookups that waited for a resolver retry: a query was
	// lost (RetryThresholdUS).
	Retried  uint64  `json:"retried"`
	Timeouts uint64  `json:"timeouts"`
	Errors   uint64  `json:"errors"`
	P50MS    float64 `json:"p50ms"`
	P99MS    float64 `json:"p99ms"`
	MaxMS    float64 `json:"maxms"`
	// FirstNS and LastNS bound the lookups on the node's clock (the counter
	// pod on the same node reads the same clock).
	FirstNS int64 `json:"-"`
	LastNS  int64 `json:"-"`
	// Complete: the probe wrote its summary line and it matches the samples.
	Complete bool `json:"complete"`
	// Problem says why the burst is incomplete or empty.
	Problem string `json:"problem,omitempty"`
}

// RetryThresholdUS is the least a lookup takes when one of its queries was
// lost and resent, from the resolv.conf options the pod was admitted with
// (a mutating webhook may have set timeout or attempts): glibc resends
// after timeout (5 s by default); musl resends every timeout/attempts
// (retry_interval in res_msend.c: 2.5 s with the defaults 5 and 2), so its
// lost query costs 2.5 s, not 5. Less the lab's tolerance (0.5 s, at most
// a fifth of the interval).
func RetryThresholdUS(backend string, options []corev1.PodDNSConfigOption) int64 {
	timeout, attempts := int64(5), int64(2)
	for _, o := range options {
		if o.Value == nil {
			continue
		}
		n, err := strconv.ParseInt(*o.Value, 10, 64)
		if err != nil || n < 1 {
			continue
		}
		switch o.Name {
		case "timeout":
			timeout = min(n, 30) // both libcs cap it at 30 s
		case "attempts":
			attempts = min(n, 5) // both libcs cap it at 5
		}
	}
	interval := timeout * 1_000_000
	if backend == mitigation.Musl {
		interval /= attempts
	}
	return interval - min(int64(sample.RetryToleranceUS), interval/5)
}

// ParseProbeLog reads a probe pod's log (samples, a summary line, and
// whatever the probe wrote to stderr interleaved) into p's burst.
func ParseProbeLog(p Probe, r io.Reader) Burst {
	b := Burst{Probe: p}
	threshold := p.RetryUS
	if threshold == 0 {
		threshold = RetryThresholdUS(p.Variant.Backend, nil)
	}
	var durations []int64
	var noise []string
	var summary *sample.Summary
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			noise = append(noise, string(line))
			continue
		}
		s, sum, err := sample.NewDecoder(bytes.NewReader(line)).Next()
		if err != nil && !errors.Is(err, io.EOF) {
			noise = append(noise, err.Error())
			continue
		}
		if sum != nil {
			summary = sum
			continue
		}
		if s == nil {
			continue
		}
		b.Lookups++
		durations = append(durations, s.DurationUS)
		if s.DurationUS >= 1_000_000 {
			b.Delayed++
		}
		if s.DurationUS >= threshold {
			b.Retried++
		}
		switch s.Result {
		case sample.Timeout:
			b.Timeouts++
		case sample.Error:
			b.Errors++
		}
		end := s.StartNS + s.DurationUS*1000
		if b.FirstNS == 0 || s.StartNS < b.FirstNS {
			b.FirstNS = s.StartNS
		}
		b.LastNS = max(b.LastNS, end)
	}
	if err := sc.Err(); err != nil {
		noise = append(noise, "read the log: "+err.Error())
	}
	slices.Sort(durations)
	if n := len(durations); n > 0 {
		b.P50MS = float64(durations[n/2]) / 1000
		b.P99MS = float64(durations[min(n-1, n*99/100)]) / 1000
		b.MaxMS = float64(durations[n-1]) / 1000
	}
	switch {
	case summary == nil:
		b.Problem = "no summary line: the probe did not finish"
	case summary.Lookups != b.Lookups:
		b.Problem = fmt.Sprintf("the summary says %d lookups, the log has %d", summary.Lookups, b.Lookups)
	case !summary.Complete:
		b.Problem = "the probe was stopped early"
	default:
		b.Complete = true
	}
	if b.Problem != "" && len(noise) > 0 {
		b.Problem += ": " + strings.Join(noise[max(0, len(noise)-3):], " | ")
	}
	return b
}
