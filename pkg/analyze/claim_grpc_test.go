package analyze

import (
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results/resultstest"
	"labrun.dev/labrun/pkg/scenario"
)

const grpcYAML = header + `workload:
  resolvers: [grpc-ares]
  mitigations: [none, single-request-reopen, grpc-native, grpc-native+single-request-reopen]
chaos: {raceEmulator: {profile: "5.0-5.5"}}
`

// grpcShares gives each gRPC cell, by mitigation id, the shares of calls that
// missed their deadline and that succeeded late; lookups per cell as given.
type grpcShares map[string]struct {
	deadline, slowOK float64
	lookups          int
}

func (g grpcShares) spec(c scenario.Cell) (resultstest.Cell, bool) {
	s, ok := g[c.MitigationID()]
	if !ok {
		return resultstest.Cell{}, false
	}
	cs := resultstest.Cell{Lookups: s.lookups, DeadlineExceeded: s.deadline, SlowOK: s.slowOK}
	if s.deadline+s.slowOK > 0 {
		cs.EmulatorDropped = uint64(float64(s.lookups) * (s.deadline + s.slowOK))
	}
	return cs, true
}

func TestClaim4OnGRPCDeadlines(t *testing.T) {
	const srr, native, nativeSRR = "single-request-reopen", "grpc-native", "grpc-native+single-request-reopen"
	type share = struct {
		deadline, slowOK float64
		lookups          int
	}
	tests := []struct {
		name     string
		cells    grpcShares
		want     Verdict
		evidence string // a part the evidence must contain
	}{
		{
			name:     "as the seed saw it: c-ares keeps the failures, native with the option has none",
			cells:    grpcShares{"none": {0.4, 0, 200}, srr: {0.4, 0, 200}, native: {0.3, 0.2, 150}, nativeSRR: {0, 0, 1000}},
			want:     Pass,
			evidence: "default_grpc-ares_grpc-native+single-request-reopen: 0 of 1000 calls hit",
		},
		{
			name:     "native with the option still misses deadlines",
			cells:    grpcShares{"none": {0.4, 0, 200}, srr: {0.4, 0, 200}, nativeSRR: {0.05, 0, 1000}},
			want:     Fail,
			evidence: "should have been fixed",
		},
		{
			name:     "native with the option succeeds, but late: still hit",
			cells:    grpcShares{"none": {0.4, 0, 200}, srr: {0.4, 0, 200}, nativeSRR: {0, 0.05, 1000}},
			want:     Fail,
			evidence: "0 timed out",
		},
		{
			name:     "the option helps c-ares: far below its none cell",
			cells:    grpcShares{"none": {0.4, 0, 200}, srr: {0.03, 0, 1000}, nativeSRR: {0, 0, 1000}},
			want:     Fail,
			evidence: "c-ares should keep",
		},
		{
			name:     "none cell not hit: nothing to compare with",
			cells:    grpcShares{"none": {0, 0, 1000}, srr: {0, 0, 1000}, nativeSRR: {0, 0, 1000}},
			want:     NotRun,
			evidence: "its none cell was not hit",
		},
		{
			name:     "too few native calls to show the absence",
			cells:    grpcShares{"none": {0.4, 0, 200}, srr: {0.4, 0, 200}, nativeSRR: {0, 0, 100}},
			want:     NotRun,
			evidence: "100 calls, fewer than 200",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := analyzeSynthetic(t, grpcYAML, tt.cells.spec)
			got := verdicts(a)[4]
			if got.Verdict != tt.want || !strings.Contains(got.Evidence, tt.evidence) {
				t.Errorf("claim 4 = %s (%s), want %s with %q", got.Verdict, got.Evidence, tt.want, tt.evidence)
			}
			// gRPC calls are not 5 s multiples: claims 1-3 stay out of it.
			for _, n := range []int{1, 2, 3} {
				if v := verdicts(a)[n].Verdict; v != NotRun {
					t.Errorf("claim %d = %s on a gRPC-only run", n, v)
				}
			}
		})
	}
}

func TestGRPCHitsCountLateSuccessesAndTimeoutsOnce(t *testing.T) {
	a := analyzeSynthetic(t, grpcYAML, grpcShares{"none": {0.3, 0.2, 2000}}.spec)
	c := a.Cell("default_grpc-ares_none")
	hits := grpcHits(c)
	// Every timeout took 3 s, so the calls ≥ 1 s hold them and the late
	// successes, each once.
	if hits != c.Stats.AtLeast1s || hits <= c.Stats.Timeouts {
		t.Errorf("hits %d, timeouts %d, ≥ 1 s %d", hits, c.Stats.Timeouts, c.Stats.AtLeast1s)
	}
	if share := grpcHitShare(c); share < 0.45 || share > 0.55 {
		t.Errorf("hit share %.3f, want about 0.5", share)
	}
}
