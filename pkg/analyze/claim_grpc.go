package analyze

import (
	"fmt"

	"labrun.dev/labrun/pkg/sample"
)

// The symptom of a gRPC call under the race is not a 5 s multiple: the call
// has a deadline (3 s, the seed's), so a lost DNS answer makes it fail with
// DEADLINE_EXCEEDED (result timeout) at the deadline, or, when the resolver
// retried in time, succeed late. A call is hit when it timed out or took at
// least GRPCHitUS: no resolver retries a lost query in under 1 s, and a
// healthy call in the lab (new channel, lookup, connect, one RPC) takes
// milliseconds.
const (
	GRPCHitUS = second
	// GRPCNearBaseline: c-ares with single-request-reopen "keeps" the
	// failures when its hit share is at least this fraction of its none
	// cell's (the option should change nothing; the share moves with luck).
	GRPCNearBaseline = 0.5
)

// IsGRPCBackend reports whether a probe back end makes gRPC calls, whose
// symptom is a missed deadline rather than a 5 s multiple.
func IsGRPCBackend(backend string) bool { return backend == "grpc-ares" || backend == "grpc-native" }

// IsGRPC reports whether the cell ran a gRPC back end, whose symptom is a
// hit call (HitShare), not a lookup at a 5 s multiple.
func (c *Cell) IsGRPC() bool { return IsGRPCBackend(c.Backend) }

func isGRPC(c *Cell) bool { return c.IsGRPC() }

// GRPCHit reports whether one gRPC call of d µs with result r was hit by the
// race: it timed out or took at least GRPCHitUS. (The cell-level count below
// works from the summed counts, which give the same number whenever every
// timeout took ≥ 1 s, as every timeout of the lab does.)
func GRPCHit(d int64, r sample.Result) bool { return r == sample.Timeout || d >= GRPCHitUS }

// HitShare is the share of a gRPC cell's calls hit by the race (timed out,
// or took at least GRPCHitUS); 0 without samples. It reads only Stats, so it
// works on a cell decoded from summary.json too.
func (c *Cell) HitShare() float64 {
	if c.Stats == nil || c.Stats.Count == 0 {
		return 0
	}
	return grpcHitShare(c)
}

// grpcHits counts the calls hit by the race. Every timeout waited for the
// deadline or a resolver timeout, so the calls ≥ 1 s include them; the larger
// count is taken in case a back end reported a timeout sooner.
func grpcHits(c *Cell) uint64 { return max(c.Stats.Timeouts, c.Stats.AtLeast1s) }

// GRPCHits is the number of calls hit by the race, as claim 4 counts them:
// timed out, or took at least 1 s.
func (c *Cell) GRPCHits() uint64 { return grpcHits(c) }

func grpcHitShare(c *Cell) float64 { return float64(grpcHits(c)) / float64(c.Stats.Count) }

// grpcDelayed and grpcClean are delayed and clean with gRPC's symptom, and
// the same thresholds.
func grpcDelayed(c *Cell) bool {
	return c.Measured() && many(grpcHits(c), c.Stats.Count)
}

func grpcClean(c *Cell) bool {
	return c.Measured() && c.Stats.Count >= CleanMinCount && !many(grpcHits(c), c.Stats.Count)
}

func grpcSymptom(c *Cell) string {
	return fmt.Sprintf("%s: %d of %d calls hit (%.1f%%: %d timed out, %d took ≥ 1 s)",
		c.ID, grpcHits(c), c.Stats.Count, 100*grpcHitShare(c), c.Stats.Timeouts, c.Stats.AtLeast1s)
}

// claimGRPCNeedsNative: grpc-ares + single-request-reopen keeps its none cell's failures
// (c-ares ignores resolv.conf options); grpc-native + single-request-reopen
// (getaddrinfo, which honours the option) has none. Both halves are needed,
// each against a none cell that was hit.
func claimGRPCNeedsNative(a *Analysis) Claim {
	k := &check{}
	var inconclusive []string
	var aresPass, nativePass int
	for _, c := range measured(a, func(c *Cell) bool { return isGRPC(c) && underRace(c) && c.Has("single-request-reopen") }) {
		b := a.baselineOf(c)
		if b == nil || !b.Measured() || !grpcDelayed(b) {
			inconclusive = append(inconclusive, c.ID+" (its none cell was not hit)")
			continue
		}
		line := fmt.Sprintf("%s; none %d of %d (%.1f%%)", grpcSymptom(c), grpcHits(b), b.Stats.Count, 100*grpcHitShare(b))
		switch {
		case c.Backend == "grpc-ares" && grpcDelayed(c) && grpcHitShare(c) >= GRPCNearBaseline*grpcHitShare(b):
			aresPass++
			k.pass = append(k.pass, line)
		case c.Backend == "grpc-ares":
			k.fail = append(k.fail, line+fmt.Sprintf(": c-ares should keep at least %.0f%% of the none cell's share", 100*GRPCNearBaseline))
		case grpcClean(c):
			nativePass++
			k.pass = append(k.pass, line)
		case grpcDelayed(c):
			k.fail = append(k.fail, line+": the native resolver should have been fixed by the option")
		default:
			inconclusive = append(inconclusive, fmt.Sprintf("%s (%d calls, fewer than %d, or a rare hit)", c.ID, c.Stats.Count, CleanMinCount))
		}
	}
	if len(k.fail) == 0 && (aresPass == 0 || nativePass == 0) {
		ev := fmt.Sprintf("needs grpc-ares+single-request-reopen and grpc-native+single-request-reopen cells under the race with delayed baselines; found %d and %d", aresPass, nativePass)
		if len(inconclusive) > 0 {
			ev += "; inconclusive: " + join(inconclusive)
		}
		return Claim{N: 4, Text: ClaimTexts[4], Verdict: NotRun, Evidence: ev}
	}
	return k.verdict(4)
}
