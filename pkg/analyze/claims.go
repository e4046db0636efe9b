package analyze

import (
	"fmt"
	"slices"
	"strings"
)

// Verdict is a claim's outcome on a run.
type Verdict string

const (
	Pass   Verdict = "pass"
	Fail   Verdict = "fail"
	NotRun Verdict = "not-run" // the run has no cell that can test the claim
)

// Claim is one claim of PHENOMENON.md checked on a run's data.
type Claim struct {
	N        int     `json:"n"`
	Text     string  `json:"text"`
	Verdict  Verdict `json:"verdict"`
	Evidence string  `json:"evidence"`
}

// Thresholds of the claim checks (docs/reading-a-report.md explains them).
const (
	// A cell is delayed when at least DelayedMin lookups, and at least
	// DelayedShare of all, took a multiple of 5 s (± 0.5 s).
	DelayedMin   = 3
	DelayedShare = 0.001
	// A cell is clean when it is not delayed and has at least CleanMinCount
	// lookups (fewer cannot show a rare delay's absence). There is no grey
	// zone between the two: a timing fix such as delay-aaaa may leave one
	// stray delay in a thousand lookups, and a cell that went from half of
	// its lookups at 5 s to that is fixed (the evidence shows the residue).
	CleanMinCount = 200
	// Claim 1 also wants most slow lookups at 5 s multiples, not spread out.
	ClusteredOfSlowMin = 0.8
	// Claim 9: a lookup of an outside name under ndots:5 makes more than this
	// many queries (A+AAAA for the name itself is 2).
	ExpandedQueriesMin = 2.5
	// Claim 11 compares loads only between cells of at least this many
	// lookups: a share of a handful (a closed-loop probe stuck in 5 s waits)
	// says nothing.
	LoadMinCount = 30
)

// ClaimTexts are the claims, numbered as in PHENOMENON.md.
var ClaimTexts = []string{
	1:  "Under the race, glibc lookups without mitigation show delays clustered at 5 s multiples.",
	2:  "single-request-reopen removes them for glibc; so do single-request and use-vc.",
	3:  "musl is unaffected by those options (still delayed under the race).",
	4:  "gRPC with c-ares keeps the delays with single-request-reopen; adding GRPC_DNS_RESOLVER=native fixes it.",
	5:  "NodeLocal DNSCache removes them for every resolver.",
	6:  "Delaying AAAA by a few ms removes them.",
	7:  "insert_failed (or the emulator's drop count) grows with the delays and stays flat with a fix.",
	8:  "A and AAAA leave from the same source port without mitigation and from different ports with single-request-reopen (seen in a capture).",
	9:  "ndots:5 multiplies queries per lookup of an outside name; fqdn/autopath/ndots-1 cut them.",
	10: "--random-fully does not fix the DNAT race.",
	11: "More concurrent lookups per node → more delays.",
}

func delayed(c *Cell) bool {
	return c.Measured() && many(c.Stats.Clustered, c.Stats.Count)
}

func clean(c *Cell) bool {
	return c.Measured() && c.Stats.Count >= CleanMinCount && !many(c.Stats.Clustered, c.Stats.Count)
}

// many: n events in count lookups are at least DelayedMin and DelayedShare
// of them (delayed lookups, or drops counted by the kernel or the emulator).
func many(n, count uint64) bool {
	return n >= DelayedMin && count > 0 && float64(n)/float64(count) >= DelayedShare
}

// underRace: the emulator ran, or the kernel dropped packets on clashes.
func underRace(c *Cell) bool {
	return c.Emulator || (c.Counters != nil && c.Counters.Conntrack[InsertFailed] > 0)
}

func (c *Cell) symptom() string {
	s := c.Stats
	return fmt.Sprintf("%s: %d of %d lookups at 5 s multiples (%.2f%%: 5 s %d, 10 s %d, 15 s %d, ≥20 s %d)",
		c.ID, s.Clustered, s.Count, 100*s.ClusteredShare, s.Near5s, s.Near10s, s.Near15s, s.Near20sPlus)
}

// check is a claim being evaluated: findings for and against.
type check struct {
	pass, fail []string
	notRun     string
}

func (k *check) verdict(n int) Claim {
	cl := Claim{N: n, Text: ClaimTexts[n]}
	switch {
	case len(k.fail) > 0:
		cl.Verdict, cl.Evidence = Fail, join(k.fail)+passNote(k.pass)
	case len(k.pass) > 0:
		cl.Verdict, cl.Evidence = Pass, join(k.pass)
	default:
		cl.Verdict, cl.Evidence = NotRun, k.notRun
	}
	return cl
}

func join(xs []string) string {
	const maxShown = 4
	if len(xs) > maxShown {
		return strings.Join(xs[:maxShown], "; ") + fmt.Sprintf("; and %d more", len(xs)-maxShown)
	}
	return strings.Join(xs, "; ")
}

func passNote(pass []string) string {
	if len(pass) == 0 {
		return ""
	}
	return fmt.Sprintf(" (while %d cell(s) agreed)", len(pass))
}

// EvaluateClaims checks every claim on a's cells.
func EvaluateClaims(a *Analysis) []Claim {
	return []Claim{
		claimDelaysAt5s(a), claimGlibcOptionsFix(a), claimMuslUnmoved(a), claimGRPCNeedsNative(a), claimMitigationFixes(a, 5, "nodelocaldns"), claimMitigationFixes(a, 6, "delay-aaaa"),
		claimCountersFollowDelays(a), claimSamePortPairs(a), claimSearchExpansion(a), claimRandomFullyDoesNotFix(a), claimLoadMoreDelays(a),
	}
}

func measured(a *Analysis, keep func(*Cell) bool) []*Cell {
	var out []*Cell
	for _, c := range a.Cells {
		if c.Measured() && keep(c) {
			out = append(out, c)
		}
	}
	return out
}

func hasAny(c *Cell, ids ...string) bool {
	return slices.ContainsFunc(ids, c.Has)
}

var resolvConfFixes = []string{"single-request-reopen", "single-request", "use-vc"}

func claimDelaysAt5s(a *Analysis) Claim {
	k := &check{notRun: "no completed glibc cell without mitigation ran under the race (emulator on or insert_failed growing)"}
	for _, c := range measured(a, func(c *Cell) bool { return c.Backend == "glibc" && c.IsBaseline() && underRace(c) }) {
		switch {
		case !delayed(c):
			k.fail = append(k.fail, c.symptom()+": not delayed")
		case c.Stats.ClusteredOfSlow < ClusteredOfSlowMin:
			k.fail = append(k.fail, fmt.Sprintf("%s, but only %.0f%% of lookups ≥ 1 s are at 5 s multiples", c.symptom(), 100*c.Stats.ClusteredOfSlow))
		default:
			k.pass = append(k.pass, fmt.Sprintf("%s; %.0f%% of lookups ≥ 1 s are at 5 s multiples", c.symptom(), 100*c.Stats.ClusteredOfSlow))
		}
	}
	return k.verdict(1)
}

// fixedAgainstBaseline judges cells against what a claim expects of them.
// wantClean: a delayed cell fails; a clean one passes when its baseline is
// delayed (otherwise it proves nothing). !wantClean (the delays persist): a
// delayed cell passes; a clean one fails when its baseline is delayed.
func fixedAgainstBaseline(a *Analysis, k *check, cells []*Cell, wantClean bool) {
	var skipped []string
	for _, c := range cells {
		b := a.baselineOf(c)
		// gRPC's symptom is a call that misses its 3 s deadline, not a
		// 5 s multiple (claimGRPCNeedsNative.go): judge its cells by their hits.
		isDelayed, isClean, symptom := delayed, clean, (*Cell).symptom
		if isGRPC(c) {
			isDelayed, isClean, symptom = grpcDelayed, grpcClean, grpcSymptom
		}
		baseDelayed := b != nil && isDelayed(b)
		line := symptom(c)
		if b != nil && b.Measured() {
			if isGRPC(c) {
				line += fmt.Sprintf("; baseline %d of %d", grpcHits(b), b.Stats.Count)
			} else {
				line += fmt.Sprintf("; baseline %d of %d", b.Stats.Clustered, b.Stats.Count)
			}
		}
		switch {
		case isDelayed(c) && wantClean:
			k.fail = append(k.fail, line)
		case isDelayed(c):
			k.pass = append(k.pass, line)
		case isClean(c) && baseDelayed && wantClean:
			k.pass = append(k.pass, line)
		case isClean(c) && baseDelayed:
			k.fail = append(k.fail, line)
		default:
			skipped = append(skipped, c.ID)
		}
	}
	if len(skipped) > 0 && len(k.pass)+len(k.fail) == 0 {
		k.notRun += fmt.Sprintf("; inconclusive (baseline not delayed, or too few lookups): %s", strings.Join(skipped, ", "))
	}
}

func claimGlibcOptionsFix(a *Analysis) Claim {
	k := &check{notRun: "no completed glibc cell with single-request-reopen, single-request or use-vc under the race"}
	cells := measured(a, func(c *Cell) bool {
		return c.Backend == "glibc" && underRace(c) && hasAny(c, resolvConfFixes...) && len(c.cell.Mitigations.ClusterLevel()) == 0
	})
	fixedAgainstBaseline(a, k, cells, true)
	return k.verdict(2)
}

func claimMuslUnmoved(a *Analysis) Claim {
	k := &check{notRun: "no completed musl cell with single-request-reopen, single-request or use-vc under the race"}
	cells := measured(a, func(c *Cell) bool {
		return c.Backend == "musl" && underRace(c) && hasAny(c, resolvConfFixes...) && len(c.cell.Mitigations.ClusterLevel()) == 0
	})
	fixedAgainstBaseline(a, k, cells, false)
	return k.verdict(3)
}

func claimMitigationFixes(a *Analysis, n int, id string) Claim {
	k := &check{notRun: fmt.Sprintf("no completed cell with %s under the race", id)}
	cells := measured(a, func(c *Cell) bool { return underRace(c) && c.Has(id) })
	fixedAgainstBaseline(a, k, cells, true)
	return k.verdict(n)
}

func claimRandomFullyDoesNotFix(a *Analysis) Claim {
	k := &check{notRun: "no completed cell with random-fully under the race"}
	cells := measured(a, func(c *Cell) bool {
		return underRace(c) && c.Has("random-fully") && len(c.cell.Mitigations.PodLevel()) == 0
	})
	fixedAgainstBaseline(a, k, cells, false)
	return k.verdict(10)
}

func claimCountersFollowDelays(a *Analysis) Claim {
	k := &check{}
	var grew, flat int
	for _, c := range measured(a, func(c *Cell) bool { return c.Counters != nil }) {
		drops, which := c.Counters.Drops()
		switch {
		case delayed(c):
			grew++
			line := fmt.Sprintf("%s (delayed): %s +%d", c.ID, which, drops)
			if drops > 0 {
				k.pass = append(k.pass, line)
			} else {
				k.fail = append(k.fail, line)
			}
		case clean(c) && !c.IsBaseline():
			b := a.baselineOf(c)
			if b == nil || !delayed(b) {
				continue
			}
			flat++
			line := fmt.Sprintf("%s (fixed): %s +%d in %d lookups", c.ID, which, drops, c.Stats.Count)
			if !many(drops, c.Stats.Count) { // flat on the scale that calls a cell delayed
				k.pass = append(k.pass, line)
			} else {
				k.fail = append(k.fail, line)
			}
		}
	}
	if len(k.fail) == 0 && (grew == 0 || flat == 0) {
		return Claim{N: 7, Text: ClaimTexts[7], Verdict: NotRun,
			Evidence: fmt.Sprintf("needs counters of a delayed cell and of a fixed one; found %d delayed and %d fixed with counters", grew, flat)}
	}
	return k.verdict(7)
}

func claimSamePortPairs(a *Analysis) Claim {
	k := &check{}
	var none, srr int
	for _, c := range measured(a, func(c *Cell) bool { return c.Capture != nil && c.Backend == "glibc" }) {
		p := c.Capture.SamePortPairs
		switch {
		case c.IsBaseline():
			none++
			line := fmt.Sprintf("%s: %d same-port A/AAAA pairs in %d queries", c.ID, p, c.Capture.Queries)
			if p > 0 {
				k.pass = append(k.pass, line)
			} else {
				k.fail = append(k.fail, line)
			}
		case c.Has("single-request-reopen") && c.Capture.Queries > 0:
			srr++
			line := fmt.Sprintf("%s: %d same-port pairs in %d queries", c.ID, p, c.Capture.Queries)
			if p == 0 {
				k.pass = append(k.pass, line)
			} else {
				k.fail = append(k.fail, line)
			}
		}
	}
	if len(k.fail) == 0 && (none == 0 || srr == 0) {
		return Claim{N: 8, Text: ClaimTexts[8], Verdict: NotRun,
			Evidence: fmt.Sprintf("needs captures of glibc cells with none and with single-request-reopen; found %d and %d", none, srr)}
	}
	return k.verdict(8)
}

func claimSearchExpansion(a *Analysis) Claim {
	k := &check{}
	cutters := measured(a, func(c *Cell) bool {
		return c.Capture != nil && c.Capture.Lookups.Count > 0 && hasAny(c, "fqdn", "autopath", "ndots-1")
	})
	for _, c := range cutters {
		b := a.baselineOf(c)
		if b == nil || !b.Measured() || b.Capture == nil || b.Capture.Lookups.Count == 0 || !slices.Contains(b.NameKinds, "external") {
			continue
		}
		bq, cq := b.Capture.QueriesPerLookup(), c.Capture.QueriesPerLookup()
		line := fmt.Sprintf("%s: %.1f queries per lookup vs %.1f without mitigation", c.ID, cq, bq)
		if bq > ExpandedQueriesMin && cq < bq {
			k.pass = append(k.pass, line)
		} else {
			k.fail = append(k.fail, line)
		}
	}
	if len(k.pass)+len(k.fail) == 0 {
		return Claim{N: 9, Text: ClaimTexts[9], Verdict: NotRun,
			Evidence: "needs captures of a cell with external names and no mitigation and of one with fqdn, autopath or ndots-1"}
	}
	return k.verdict(9)
}

func claimLoadMoreDelays(a *Analysis) Claim {
	k := &check{notRun: "needs baseline cells under the race that differ only in load (pods per node × concurrency)"}
	groups := map[string][]*Cell{}
	var keys []string
	for _, c := range measured(a, func(c *Cell) bool { return c.IsBaseline() && underRace(c) }) {
		key := strings.Join([]string{c.Shape, c.Backend, c.Names, c.Chaos, fmt.Sprint(c.Repeat)}, "|")
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], c)
	}
	for _, key := range keys {
		g := groups[key]
		if len(g) < 2 {
			continue
		}
		slices.SortStableFunc(g, func(x, y *Cell) int { return x.LookupsInFlightPerNode - y.LookupsInFlightPerNode })
		lo, hi := g[0], g[len(g)-1]
		if lo.LookupsInFlightPerNode == hi.LookupsInFlightPerNode {
			continue
		}
		if lo.Stats.Count < LoadMinCount || hi.Stats.Count < LoadMinCount {
			k.notRun += fmt.Sprintf("; %s: too few lookups to compare loads (%d and %d, want %d each)", lo.Backend, lo.Stats.Count, hi.Stats.Count, LoadMinCount)
			continue
		}
		line := fmt.Sprintf("%s: %d in flight per node → %.2f%% at 5 s multiples; %d → %.2f%%", lo.Backend,
			lo.LookupsInFlightPerNode, 100*lo.Stats.ClusteredShare, hi.LookupsInFlightPerNode, 100*hi.Stats.ClusteredShare)
		if hi.Stats.ClusteredShare > lo.Stats.ClusteredShare {
			k.pass = append(k.pass, line)
		} else {
			k.fail = append(k.fail, line)
		}
	}
	return k.verdict(11)
}
