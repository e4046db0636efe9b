package raceemu

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestDropProbability(t *testing.T) {
	for _, tc := range []struct {
		profile  Profile
		replicas int
		want     float64
		wantErr  bool
	}{
		{ProfilePre50, 1, 1, false},
		{ProfilePre50, 3, 1, false},
		{Profile50To55, 1, 0, false},
		{Profile50To55, 2, 0.5, false},
		{Profile50To55, 4, 0.75, false},
		{Profile50To55, 0, 0, true},
		{"4.19", 2, 0, true},
	} {
		got, err := DropProbability(tc.profile, tc.replicas)
		if (err != nil) != tc.wantErr || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("DropProbability(%q, %d) = %v, %v; want %v, error %v", tc.profile, tc.replicas, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestClashAndDrop(t *testing.T) {
	pol := Policy{Window: time.Millisecond, Probability: 0.5}
	for _, tc := range []struct {
		name       string
		proto      uint8
		seenBefore bool
		since      time.Duration
		draw       float64
		clash      bool
		drop       bool
	}{
		{"first packet of a tuple", protoUDP, false, 0, 0, false, false},
		{"second within window, draw below p", protoUDP, true, 10 * time.Microsecond, 0.49, true, true},
		{"second within window, draw at p", protoUDP, true, 10 * time.Microsecond, 0.5, true, false},
		{"second just inside window", protoUDP, true, time.Millisecond - 1, 0, true, true},
		{"second at the window", protoUDP, true, time.Millisecond, 0, false, false},
		{"second long after", protoUDP, true, time.Second, 0, false, false},
		{"reordered in a burst", protoUDP, true, -time.Microsecond, 0, true, true},
		{"reordered, a window apart", protoUDP, true, -time.Millisecond, 0, false, false},
		{"an A read after its AAAA held 5 ms", protoUDP, true, -5 * time.Millisecond, 0, false, false},
		{"tcp is spared", protoTCP, true, 0, 0, false, false},
	} {
		clash := Clash(pol, tc.proto, tc.seenBefore, tc.since)
		drop := Drop(pol, clash, tc.draw)
		if clash != tc.clash || drop != tc.drop {
			t.Errorf("%s: clash %v drop %v, want %v %v", tc.name, clash, drop, tc.clash, tc.drop)
		}
	}
	// p = 1 (pre-5.0) drops every clash whatever the draw; p = 0 drops none.
	if !Drop(Policy{Probability: 1}, true, 0.999999) || Drop(Policy{Probability: 0}, true, 0) {
		t.Error("probability bounds")
	}
}

// draws returns a random source that yields vs in order and fails the test
// when asked for more.
func draws(t *testing.T, vs ...float64) func() float64 {
	return func() float64 {
		if len(vs) == 0 {
			t.Fatal("unexpected random draw")
		}
		v := vs[0]
		vs = vs[1:]
		return v
	}
}

func tuple(proto uint8, srcPort uint16) Tuple {
	return Tuple{
		Proto: proto,
		Src:   netip.AddrPortFrom(netip.MustParseAddr("10.244.1.5"), srcPort),
		Dst:   netip.AddrPortFrom(netip.MustParseAddr("10.96.0.10"), 53),
	}
}

func TestTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	us := time.Microsecond
	type obs struct {
		tuple       Tuple
		at          time.Duration
		clash, drop bool
	}
	for _, tc := range []struct {
		name  string
		p     float64
		draws []float64
		obs   []obs
	}{
		{"one socket, A then AAAA 20 µs apart, pre-5.0", 1, []float64{0.3},
			[]obs{{tuple(protoUDP, 40000), 0, false, false}, {tuple(protoUDP, 40000), 20 * us, true, true}}},
		{"two sockets (single-request-reopen)", 1, nil,
			[]obs{{tuple(protoUDP, 40000), 0, false, false}, {tuple(protoUDP, 40001), 20 * us, false, false}}},
		{"sequential on one socket after the window (single-request)", 1, nil,
			[]obs{{tuple(protoUDP, 40000), 0, false, false}, {tuple(protoUDP, 40000), 2 * time.Millisecond, false, false}}},
		{"tcp (use-vc)", 1, nil,
			[]obs{{tuple(protoTCP, 40000), 0, false, false}, {tuple(protoTCP, 40000), 1 * us, false, false}}},
		{"5.0-5.5 with 2 replicas: same backend spares, different drops", 0.5, []float64{0.7, 0.2},
			[]obs{
				{tuple(protoUDP, 1), 0, false, false}, {tuple(protoUDP, 1), 5 * us, true, false},
				{tuple(protoUDP, 2), 0, false, false}, {tuple(protoUDP, 2), 5 * us, true, true},
			}},
		{"delay-aaaa: the AAAA released 5 ms on reaches the race queue before its A, pre-5.0", 1, nil,
			[]obs{{tuple(protoUDP, 40000), 5 * time.Millisecond, false, false}, {tuple(protoUDP, 40000), 0, false, false}}},
		{"a third packet counts from the second, dropped or not", 1, []float64{0, 0},
			[]obs{{tuple(protoUDP, 1), 0, false, false}, {tuple(protoUDP, 1), 900 * us, true, true}, {tuple(protoUDP, 1), 1800 * us, true, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(Policy{Window: time.Millisecond, Probability: tc.p}, draws(t, tc.draws...))
			for i, o := range tc.obs {
				got := tr.Observe(o.tuple, t0.Add(o.at))
				if got.Clash != o.clash || got.Drop != o.drop {
					t.Errorf("packet %d: clash %v drop %v, want %v %v", i, got.Clash, got.Drop, o.clash, o.drop)
				}
				if got.Repeat && got.Gap <= 0 && o.at > 0 {
					t.Errorf("packet %d: repeat with gap %v", i, got.Gap)
				}
			}
		})
	}
}

func TestTrackerGap(t *testing.T) {
	tr := NewTracker(Policy{Window: time.Millisecond, Probability: 0}, func() float64 { return 0.5 })
	t0 := time.Unix(1000, 0)
	if o := tr.Observe(tuple(protoUDP, 9), t0); o.Repeat || o.Gap != 0 {
		t.Errorf("first packet: %+v", o)
	}
	if o := tr.Observe(tuple(protoUDP, 9), t0.Add(37*time.Microsecond)); !o.Repeat || o.Gap != 37*time.Microsecond || !o.Clash || o.Drop {
		t.Errorf("second packet: %+v, want a 37 µs repeat that clashes and is spared at p = 0", o)
	}
}

func TestTrackerForgetsOldTuples(t *testing.T) {
	tr := NewTracker(Policy{Window: time.Millisecond, Probability: 1}, func() float64 { return 0 })
	t0 := time.Unix(1000, 0)
	for i := range sweepEvery {
		tr.Observe(tuple(protoUDP, uint16(i)), t0.Add(time.Duration(i)*time.Microsecond))
	}
	// The sweep at the last observation keeps only tuples seen < 1 ms before it.
	if n := tr.Remembered(); n > 1001 || n < 999 {
		t.Errorf("remembered %d tuples after a sweep, want ≈ 1000", n)
	}
}
