package raceemu

import (
	"context"
	"testing"
	"time"
)

// TestIntegrationGlibcResolverState shows why the probe rereads resolv.conf
// before each lookup by default: in one long-lived process, glibc switches a
// thread to single-request after its first A/AAAA timeout and the race then
// spares it; with a fresh state per lookup (a new process each time, as curl
// or a shell script would be) every lookup meets the race again.
func TestIntegrationGlibcResolverState(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, network namespaces, iptables NFQUEUE, gcc; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab := claimsLab(t, ctx, resolvConf())
	labAgent(t, lab, "--profile", "pre-5.0")
	client := lab.Clients[0]

	// A pair can escape the emulator when the A's answer beats the AAAA out
	// (a loaded machine), so the checks count rather than demand every lookup.
	fresh := durations(probe(t, ctx, lab, client, "glibc", "--count", "3", "--names", fqdnName))
	if n := count5s(fresh); n < 2 {
		t.Errorf("fresh state: %d of %v at a 5 s multiple, want at least 2: every lookup meets the race", n, fresh)
	}
	kept := durations(probe(t, ctx, lab, client, "glibc", "--count", "4", "--names", fqdnName, "--keep-resolver-state"))
	first := -1
	for i, d := range kept {
		if at5sMultiple(d) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("kept state: no lookup of %v met the race", kept)
	}
	// The fallback is per OS thread, and Go may run a cgo call on another
	// thread: so at least one later lookup is spared, not necessarily all.
	if later := kept[first+1:]; len(later) > 0 && count5s(later) == len(later) {
		t.Errorf("kept state: every lookup after the first timeout still took 5 s (%v); glibc should have switched to single-request", kept)
	}
	t.Logf("fresh state: %v; kept state: %v", fresh, kept)
}

func count5s(ds []time.Duration) int {
	n := 0
	for _, d := range ds {
		if at5sMultiple(d) {
			n++
		}
	}
	return n
}
