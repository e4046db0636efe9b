// Package raceemu emulates the drop semantics of the conntrack insert race of
// old kernels (PHENOMENON.md) on a kernel that resolves the race: a UDP packet
// toward the DNS VIP that opens a connection is dropped when another packet of
// the same 5-tuple was seen less than a window W ago, with a probability set
// by the kernel profile it imitates. It also holds AAAA queries for a while
// (the delay-AAAA mitigation) where there is no netem.
package raceemu

import (
	"fmt"
	"net/netip"
	"time"
)

// Profile names the kernel whose drop behaviour is emulated.
type Profile string

const (
	// ProfilePre50: every clash drops the packet (before Linux 5.0).
	ProfilePre50 Profile = "pre-5.0"
	// Profile50To55: only clashes whose two packets got different DNAT
	// backends drop (Linux 5.0 to 5.5); with r backends chosen at random that
	// is a chance of 1 − 1/r.
	Profile50To55 Profile = "5.0-5.5"
)

// DropProbability is the chance that a clash drops a packet under profile,
// with replicas DNS backends behind the VIP.
func DropProbability(profile Profile, replicas int) (float64, error) {
	switch profile {
	case ProfilePre50:
		return 1, nil
	case Profile50To55:
		if replicas < 1 {
			return 0, fmt.Errorf("profile %s needs replicas ≥ 1, got %d", profile, replicas)
		}
		return 1 - 1/float64(replicas), nil
	}
	return 0, fmt.Errorf("unknown profile %q (want %s or %s)", profile, ProfilePre50, Profile50To55)
}

// Policy is the emulated race: a clash is a second packet of one 5-tuple
// within Window of the previous one; a clash drops with Probability.
type Policy struct {
	Window      time.Duration
	Probability float64
}

// IP protocol numbers.
const (
	protoTCP = 6
	protoUDP = 17
)

// Tuple is a connection's 5-tuple as its first packet carries it (before DNAT).
type Tuple struct {
	Proto    uint8
	Src, Dst netip.AddrPort
}

// Clash reports whether a packet of protocol proto, arriving sinceLast after
// the previous packet of its 5-tuple (seenBefore false if none is remembered),
// would have clashed in the conntrack insert race. Only UDP races: TCP's
// handshake creates the entry before a second packet can be sent.
func Clash(pol Policy, proto uint8, seenBefore bool, sinceLast time.Duration) bool {
	if proto != protoUDP || !seenBefore {
		return false
	}
	// The two packets' distance, in either order: packets read in one burst
	// can carry equal or slightly reordered times, and an A the agent was
	// slow to let through its delay queue can reach the race queue after
	// the AAAA that delay-aaaa held 5 ms behind it, and released first. On
	// the way to conntrack they were 5 ms apart: no clash.
	return sinceLast.Abs() < pol.Window
}

// Drop decides whether a clash drops the packet; draw is uniform in [0, 1).
func Drop(pol Policy, clash bool, draw float64) bool {
	return clash && draw < pol.Probability
}

// Tracker remembers when each 5-tuple was last seen and applies the policy.
// It is not safe for concurrent use: one reader owns it.
type Tracker struct {
	policy Policy
	draw   func() float64 // uniform in [0, 1); injected so tests are exact
	last   map[Tuple]time.Time
	calls  int
}

// NewTracker returns a Tracker with policy and random source draw.
func NewTracker(policy Policy, draw func() float64) *Tracker {
	return &Tracker{policy: policy, draw: draw, last: make(map[Tuple]time.Time)}
}

// sweepEvery bounds the memory: tuples older than the window are forgotten
// every so many observations.
const sweepEvery = 1024

// Observation is what the tracker saw of one packet.
type Observation struct {
	Clash bool // within the window of an earlier packet of its 5-tuple
	Drop  bool // the clash drops it (probability drawn)
	// Gap is the time from the previous packet of the 5-tuple, when one is
	// remembered (Repeat): the statistic that tells whether W fits the traffic.
	Gap    time.Duration
	Repeat bool
}

// Observe records a packet of t seen at now and applies the policy. A random
// number is drawn only for clashes.
func (tr *Tracker) Observe(t Tuple, now time.Time) Observation {
	prev, seen := tr.last[t]
	o := Observation{Repeat: seen}
	if seen {
		o.Gap = now.Sub(prev).Abs() // in either order (see Clash)
	}
	o.Clash = Clash(tr.policy, t.Proto, seen, o.Gap)
	if o.Clash {
		o.Drop = Drop(tr.policy, o.Clash, tr.draw())
	}
	// Every packet counts as "seen", dropped or not: the literal rule.
	if now.After(prev) || !seen {
		tr.last[t] = now
	}
	tr.calls++
	if tr.calls%sweepEvery == 0 {
		tr.sweep(now)
	}
	return o
}

func (tr *Tracker) sweep(now time.Time) {
	for t, seen := range tr.last {
		if now.Sub(seen) >= tr.policy.Window {
			delete(tr.last, t)
		}
	}
}

// Remembered is how many 5-tuples the tracker holds (for tests and metrics).
func (tr *Tracker) Remembered() int { return len(tr.last) }
