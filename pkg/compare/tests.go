package compare

import (
	"errors"
	"math"
	"slices"

	"github.com/aclements/go-moremath/mathx"
	"github.com/aclements/go-moremath/stats"
)

// mannWhitneyP is the two-sided p-value of the Mann–Whitney U test of a
// against b (go-moremath: exact for small samples, the normal approximation
// with tie correction otherwise). Samples that are all one value cannot
// differ in location: p = 1.
func mannWhitneyP(a, b []float64) (float64, error) {
	res, err := stats.MannWhitneyUTest(a, b, stats.LocationDiffers)
	if errors.Is(err, stats.ErrSamplesEqual) {
		return 1, nil
	}
	if err != nil {
		return 1, err
	}
	return math.Min(1, res.P), nil
}

// fisherExactP is the two-sided p-value of Fisher's exact test on the 2×2
// table [[a, b], [c, d]] (rows: runs; columns: events, non-events): the
// probability, with the margins fixed, of every table no more likely than
// the one observed, as R's fisher.test and SciPy compute it (with the same
// relative tolerance for ties in probability).
func fisherExactP(a, b, c, d uint64) float64 {
	row1, col1, n := int(a+b), int(a+c), int(a+b+c+d)
	if n == 0 || row1 == 0 || row1 == n || col1 == 0 || col1 == n {
		return 1 // a margin is empty: every table is the observed one
	}
	h := stats.HypergeometicDist{N: n, K: col1, Draws: row1}
	lo, hi := h.Bounds()
	observed := h.PMF(float64(a))
	const relTol = 1 + 1e-7
	var p float64
	for k := int(lo); k <= int(hi); k++ {
		if pk := h.PMF(float64(k)); pk <= observed*relTol {
			p += pk
		}
	}
	return math.Min(1, p)
}

// holm returns Holm–Bonferroni adjusted p-values, in the order given: the
// i-th smallest p times (m − i + 1), made monotone and capped at 1. A test
// is significant at family-wise level α when its adjusted p is ≤ α.
func holm(ps []float64) []float64 {
	m := len(ps)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case ps[i] < ps[j]:
			return -1
		case ps[i] > ps[j]:
			return 1
		}
		return 0
	})
	adj := make([]float64, m)
	running := 0.0
	for rank, i := range order {
		running = math.Max(running, math.Min(1, float64(m-rank)*ps[i]))
		adj[i] = running
	}
	return adj
}

// uTestMinP is the smallest two-sided p-value the U test can give two
// samples of n1 and n2 distinct values: all of one below all of the other,
// 2 / C(n1+n2, n1).
func uTestMinP(n1, n2 int) float64 {
	return math.Min(1, 2*math.Exp(-mathx.Lchoose(n1+n2, n1)))
}

// uTestSamplesFor is the smallest n such that two samples of n values can
// reach a p-value of at most alpha (benchstat's "need ≥ N samples").
func uTestSamplesFor(alpha float64) int {
	n := 1
	for uTestMinP(n, n) > alpha {
		n++
	}
	return n
}

// medianCISamples is the smallest sample with a finite order-statistic
// interval of the median at the confidence level (6 at 95 %).
func medianCISamples(confidence float64) int {
	for n := 2; n < 1000; n++ {
		if ci := stats.QuantileCI(n, 0.5, confidence); ci.LoOrder >= 1 && ci.HiOrder <= n {
			return n
		}
	}
	return 1000
}

// ruleOfThree is how many lookups it takes for an event of the given share
// to show at all: with none among n lookups, the one-sided 95 % upper bound
// of the share is about 3/n.
func ruleOfThree(share float64) uint64 { return uint64(math.Ceil(3 / share)) }
