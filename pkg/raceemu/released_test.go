package raceemu

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// A query held by delay-aaaa is timed by its release, when it reaches
// conntrack, not by its receive stamp: if the agent was slow to decide the A
// (a loaded node), the A is still unconfirmed when the AAAA comes back, and
// by their stamps the two are microseconds apart. The real kernel confirms
// the A in microseconds, so the AAAA must not count as a clash.
func TestDelayedQueryTimedByRelease(t *testing.T) {
	t0 := time.Now()
	a4, aaaa := udp4(query(TypeA)), udp4(query(TypeAAAA))
	for _, tt := range []struct {
		name     string
		released bool
		wantDrop bool
	}{
		{"not delayed: the pair races", false, true},
		{"released 5 ms later: no race", true, false},
	} {
		a := &agent{
			cfg:      Config{Mode: Mode{Race: RaceEmulate}},
			log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			tracker:  NewTracker(Policy{Window: time.Millisecond, Probability: 1}, func() float64 { return 0 }),
			held:     map[uint32]*time.Timer{},
			released: map[heldQuery]time.Time{},
		}
		if a.race(a4, t0) {
			t.Fatalf("%s: the first packet of a tuple was dropped", tt.name)
		}
		if tt.released {
			pkt, err := ParsePacket(aaaa)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := queryOf(pkt)
			a.released[q] = t0.Add(5 * time.Millisecond)
		}
		if got := a.race(aaaa, t0.Add(10*time.Microsecond)); got != tt.wantDrop {
			t.Errorf("%s: AAAA dropped = %v, want %v", tt.name, got, tt.wantDrop)
		}
		if len(a.released) != 0 {
			t.Errorf("%s: release record kept after use: %v", tt.name, a.released)
		}
	}
}
