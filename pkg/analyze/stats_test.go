package analyze

import (
	"math"
	"testing"

	"labrun.dev/labrun/pkg/sample"
)

func TestStatsSymptom(t *testing.T) {
	a := NewAccumulator("cell")
	// 1000 fast lookups of 2 ms, 10 at ~5 s, 3 at ~10 s, 1 at 15.2 s, 2 slow but
	// not at a multiple (2.5 s), 1 timeout at 20 s.
	for range 1000 {
		a.Add(2000, sample.OK)
	}
	for i := range 10 {
		a.Add(5_000_000+int64(i)*10_000, sample.OK)
	}
	for range 3 {
		a.Add(10_004_000, sample.OK)
	}
	a.Add(15_200_000, sample.OK)
	a.Add(2_500_000, sample.OK)
	a.Add(2_500_000, sample.Error)
	a.Add(20_000_000, sample.Timeout)
	s := a.Stats()
	if s.Count != 1017 || s.Timeouts != 1 || s.Errors != 1 || s.ByResult["ok"] != 1015 {
		t.Errorf("counts: %+v", s)
	}
	if s.Near5s != 10 || s.Near10s != 3 || s.Near15s != 1 || s.Near20sPlus != 1 || s.Clustered != 15 {
		t.Errorf("near multiples = %d/%d/%d/%d (%d)", s.Near5s, s.Near10s, s.Near15s, s.Near20sPlus, s.Clustered)
	}
	if s.AtLeast1s != 17 || s.AtLeast5s != 15 {
		t.Errorf("≥1s %d ≥5s %d, want 17 and 15", s.AtLeast1s, s.AtLeast5s)
	}
	if want := 15.0 / 17; math.Abs(s.ClusteredOfSlow-want) > 1e-12 {
		t.Errorf("ClusteredOfSlow = %g, want %g", s.ClusteredOfSlow, want)
	}
	if s.P50MS < 1.98 || s.P50MS > 2.02 || s.MaxMS != 20000 {
		t.Errorf("p50 %g max %g", s.P50MS, s.MaxMS)
	}
	if len(a.Reservoir()) != 1017 {
		t.Errorf("reservoir holds %d, want all 1017", len(a.Reservoir()))
	}
}

func TestReservoirBoundedAndUniform(t *testing.T) {
	a := NewAccumulator("x")
	const n = 200_000
	for i := range int64(n) {
		a.Add(i, sample.OK)
	}
	r := a.Reservoir()
	if len(r) != ReservoirSize {
		t.Fatalf("reservoir %d, want %d", len(r), ReservoirSize)
	}
	// A uniform sample of 0..n-1 has a mean near n/2 (sd ≈ n/sqrt(12·4096) ≈ 900).
	var sum float64
	for _, v := range r {
		sum += float64(v)
	}
	if mean := sum / float64(len(r)); math.Abs(mean-n/2) > 5000 {
		t.Errorf("reservoir mean %.0f, want near %d: not uniform", mean, n/2)
	}
}

func TestResamplerWithoutRNGIsTheSample(t *testing.T) {
	xs := make([]int64, 1000)
	for i := range xs {
		xs[i] = int64(i + 1)
	}
	mean, p99 := newResampler(xs).stats(nil)
	if mean != 500.5 || p99 != 990 {
		t.Errorf("mean %g p99 %g, want 500.5 and 990", mean, p99)
	}
}

func TestFiveSecondMultipleAndGRPCHit(t *testing.T) {
	tests := []struct {
		us   int64
		k    int64
		hit  bool // as a gRPC call that returned ok
		name string
	}{
		{1_500, 0, false, "healthy"},
		{999_999, 0, false, "just under 1 s"},
		{1_000_000, 0, true, "1 s: a gRPC hit, no 5 s multiple"},
		{4_499_999, 0, true, "just outside the 5 s band"},
		{4_500_000, 1, true, "5 s − 0.5 s"},
		{5_500_000, 1, true, "5 s + 0.5 s"},
		{5_500_001, 0, true, "just past it"},
		{10_200_000, 2, true, "10 s"},
		{25_000_000, 5, true, "25 s"},
	}
	for _, tt := range tests {
		if got := FiveSecondMultiple(tt.us); got != tt.k {
			t.Errorf("%s: FiveSecondMultiple(%d) = %d, want %d", tt.name, tt.us, got, tt.k)
		}
		if got := GRPCHit(tt.us, sample.OK); got != tt.hit {
			t.Errorf("%s: GRPCHit(%d, ok) = %v, want %v", tt.name, tt.us, got, tt.hit)
		}
	}
	if !GRPCHit(100, sample.Timeout) {
		t.Error("a timed-out call is hit, however fast")
	}
	if !IsGRPCBackend("grpc-ares") || !IsGRPCBackend("grpc-native") || IsGRPCBackend("glibc") {
		t.Error("IsGRPCBackend: want grpc-ares and grpc-native only")
	}
}
