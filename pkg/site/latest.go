package site

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/compare"
	"labrun.dev/labrun/pkg/results"
)

// LatestFile is the latest-comparison page, relative to the site root.
const LatestFile = "latest.html"

// StoredComparison is a comparison the site computed (pkg/compare), kept in
// index.json so that a later build without one of the two run directories
// still shows it. The site keeps one per scenario: that of its newest pair
// of runs it could compare.
type StoredComparison struct {
	Scenario string `json:"scenario"`
	// A and B are the runs' names (the older, then the newer).
	A        string    `json:"a"`
	B        string    `json:"b"`
	Computed time.Time `json:"computed"`
	// Comparison is compare's JSON (schema labrun.dev/compare/v1) as it was
	// written, so its numbers (nulls included) are never re-derived.
	Comparison json.RawMessage `json:"comparison"`
}

// compareLatest compares, for each scenario, its newest usable run with the
// usable run before it, when both directories were read in this build, and
// stores the result in idx.Comparisons (replacing the scenario's earlier
// one). It returns, by scenario, why a comparison that was attempted failed.
func compareLatest(idx *Index, now time.Time) map[string]string {
	failed := map[string]string{}
	for _, p := range latestPairs(idx) {
		if p.a == nil || p.a.dir == "" || p.b.dir == "" {
			continue
		}
		cmp, err := compare.Runs(results.RunDir{Dir: p.a.dir}, results.RunDir{Dir: p.b.dir}, compare.DefaultOptions())
		if err != nil {
			msg := strings.ReplaceAll(strings.ReplaceAll(err.Error(), p.a.dir, p.a.Name), p.b.dir, p.b.Name)
			failed[p.scenario] = msg
			continue
		}
		data, err := json.Marshal(cmp)
		if err != nil {
			failed[p.scenario] = err.Error()
			continue
		}
		idx.storeComparison(StoredComparison{Scenario: p.scenario, A: p.a.Name, B: p.b.Name, Computed: now.UTC(), Comparison: data})
	}
	return failed
}

// storeComparison puts c in place of the scenario's stored comparison.
func (idx *Index) storeComparison(c StoredComparison) {
	idx.Comparisons = slices.DeleteFunc(idx.Comparisons, func(s StoredComparison) bool { return s.Scenario == c.Scenario })
	idx.Comparisons = append(idx.Comparisons, c)
	slices.SortFunc(idx.Comparisons, func(a, b StoredComparison) int { return strings.Compare(a.Scenario, b.Scenario) })
}

// pair is a scenario's newest usable run and the one before it (nil when
// the scenario has a single usable run), and how many usable runs it has.
type pair struct {
	scenario string
	a, b     *Run
	runs     int
}

// latestPairs returns one pair per scenario, the scenario of the newest run
// first (idx.Runs is newest first).
func latestPairs(idx *Index) []pair {
	var out []pair
	at := map[string]int{}
	for _, r := range idx.Usable() {
		if r.Scenario == "" {
			continue
		}
		i, ok := at[r.Scenario]
		if !ok {
			at[r.Scenario] = len(out)
			out = append(out, pair{scenario: r.Scenario, b: r, runs: 1})
			continue
		}
		p := &out[i]
		if p.a == nil {
			p.a = r
		}
		p.runs++
	}
	return out
}

// LatestPage is the data of latest.html: per scenario, its newest run
// against the one before it.
type LatestPage struct {
	// Options are the thresholds every comparison of this build uses,
	// stated once at the top; a stored comparison made with others says so.
	Options    compare.Options  `json:"options"`
	Correction string           `json:"correction"`
	Scenarios  []LatestScenario `json:"scenarios"`
	// Regressions counts the scenarios whose comparison shown has a
	// significant regression.
	Regressions int `json:"regressions"`
}

// LatestScenario is one scenario's newest pair of runs.
type LatestScenario struct {
	Scenario string `json:"scenario"`
	// UsableRuns: when 1, there is nothing to compare (A is nil).
	UsableRuns int        `json:"usable_runs"`
	A          *LatestRun `json:"a,omitempty"`
	B          LatestRun  `json:"b"`
	// NoTest says, in plain words, why the newest pair has no comparison;
	// Comparison is then an earlier pair's, when one is stored, or nil.
	NoTest     string            `json:"no_test,omitempty"`
	Comparison *LatestComparison `json:"comparison,omitempty"`
}

// LatestRun names a run and its page (empty when the site has none).
type LatestRun struct {
	Name string    `json:"name"`
	Date time.Time `json:"date,omitzero"`
	Page string    `json:"page,omitempty"`
}

// Where a comparison shown came from.
const (
	ComputedNow = "computed in this build"
	FromIndex   = "stored in index.json"
)

// LatestComparison is one comparison as the page shows it: benchstat's
// tables, one for latency and one for the symptom's share.
type LatestComparison struct {
	A        LatestRun       `json:"a"`
	B        LatestRun       `json:"b"`
	Source   string          `json:"source"`
	Computed time.Time       `json:"computed"`
	Options  compare.Options `json:"options"`
	// OtherOptions: made with thresholds other than the page's.
	OtherOptions bool               `json:"other_options,omitempty"`
	Tests        int                `json:"tests"`
	Worse        int                `json:"worse"`
	Better       int                `json:"better"`
	Latency      []LatestRow        `json:"latency"`
	Share        []LatestRow        `json:"share"`
	Warnings     []LatestWarning    `json:"warnings,omitempty"`
	OnlyA        []LatestCell       `json:"only_a,omitempty"`
	OnlyB        []LatestCell       `json:"only_b,omitempty"`
	Unmeasured   []LatestUnmeasured `json:"unmeasured,omitempty"`
}

// LatestCell is a cell id with its history page, when the site has one.
type LatestCell struct {
	ID   string `json:"id"`
	Page string `json:"page,omitempty"`
}

// LatestRow is one test, formatted as `labrun compare` prints it, with the
// flags the page colours by.
type LatestRow struct {
	Cell   LatestCell     `json:"cell"`
	Metric compare.Metric `json:"metric"`
	// Symptom names the share: "at 5 s" or "gRPC hit".
	Symptom string     `json:"symptom,omitempty"`
	A       LatestSide `json:"a"`
	B       LatestSide `json:"b"`
	// Change is B against A with its sign (+7.3%, +4.72pp); Verdict is
	// what benchstat's delta column shows: "~" when not significant.
	Change      string `json:"change"`
	Verdict     string `json:"verdict"`
	P           string `json:"p"`
	AdjustedP   string `json:"adjusted_p"`
	Significant bool   `json:"significant"`
	Regression  bool   `json:"regression"`
	Improvement bool   `json:"improvement"`
	Warned      bool   `json:"warned,omitempty"`
}

// LatestSide is one run's numbers of a row, formatted.
type LatestSide struct {
	Median string `json:"median"`
	CI     string `json:"ci"` // ±% of the median: the larger half of its interval
	P99    string `json:"p99"`
	N      uint64 `json:"n"`
	Share  string `json:"share"`
	Events uint64 `json:"events"`
}

// LatestWarning is a row's warning.
type LatestWarning struct {
	Cell   string         `json:"cell"`
	Metric compare.Metric `json:"metric"`
	Text   string         `json:"text"`
}

// LatestUnmeasured is a cell of both runs that one did not measure.
type LatestUnmeasured struct {
	Cell LatestCell `json:"cell"`
	A    string     `json:"a"`
	B    string     `json:"b"`
}

// NewLatest builds the page's data from the index (its runs and stored
// comparisons), the cell histories (for links), and failed, why the
// comparisons attempted in this build failed, by scenario. It computes
// nothing: every number comes from idx.Comparisons.
func NewLatest(idx *Index, hists []History, failed map[string]string) (LatestPage, error) {
	opts := compare.DefaultOptions()
	page := LatestPage{Options: opts, Correction: compare.Correction, Scenarios: []LatestScenario{}}
	histPage := map[string]string{}
	for _, h := range hists {
		histPage[h.Cell] = h.Page
	}
	runs := map[string]*Run{}
	for i := range idx.Runs {
		runs[idx.Runs[i].Name] = &idx.Runs[i]
	}
	ref := func(name string) LatestRun {
		if r, ok := runs[name]; ok {
			return LatestRun{Name: name, Date: r.Date, Page: r.Page}
		}
		return LatestRun{Name: name}
	}
	for _, p := range latestPairs(idx) {
		s := LatestScenario{Scenario: p.scenario, UsableRuns: p.runs, B: ref(p.b.Name)}
		if p.a == nil {
			page.Scenarios = append(page.Scenarios, s)
			continue
		}
		a := ref(p.a.Name)
		s.A = &a
		i := slices.IndexFunc(idx.Comparisons, func(c StoredComparison) bool { return c.Scenario == p.scenario })
		var stored *StoredComparison
		if i >= 0 {
			stored = &idx.Comparisons[i]
		}
		current := stored != nil && stored.A == p.a.Name && stored.B == p.b.Name
		if !current {
			s.NoTest = noTestText(p, failed[p.scenario])
		}
		if stored != nil {
			c, err := newLatestComparison(*stored, ref, histPage, opts)
			if err != nil {
				return page, fmt.Errorf("site: stored comparison of %s: %w", p.scenario, err)
			}
			c.Source = FromIndex
			if current && p.a.dir != "" && p.b.dir != "" && failed[p.scenario] == "" {
				c.Source = ComputedNow
			}
			s.Comparison = &c
			if c.Worse > 0 {
				page.Regressions++
			}
		}
		page.Scenarios = append(page.Scenarios, s)
	}
	return page, nil
}

// noTestText says why the newest pair of a scenario has no comparison, and
// how to get one.
func noTestText(p pair, failure string) string {
	how := fmt.Sprintf("To get one, give both run directories to labrun site, e.g. `labrun site results/%s results/%s -o SITE`.", p.a.Name, p.b.Name)
	if failure != "" {
		return fmt.Sprintf("No test of %s against %s: the comparison of their raw samples failed (%s). %s", p.b.Name, p.a.Name, failure, how)
	}
	var missing []string
	for _, r := range []*Run{p.a, p.b} {
		if r.dir == "" {
			missing = append(missing, r.Name)
		}
	}
	which := "the directory of " + strings.Join(missing, " and of ") + " was"
	if len(missing) == 2 {
		which = "neither run directory was"
	}
	return fmt.Sprintf("No test of %s against %s, the run of %s before it: the tests need the raw samples of both runs, "+
		"%s not among this build's inputs (the site knows it only from index.json), and no earlier build stored a "+
		"comparison of the two. %s", p.b.Name, p.a.Name, p.scenario, which, how)
}

func newLatestComparison(sc StoredComparison, ref func(string) LatestRun, histPage map[string]string, opts compare.Options) (LatestComparison, error) {
	cmp, err := decodeComparison(sc.Comparison)
	if err != nil {
		return LatestComparison{}, err
	}
	cell := func(id string) LatestCell { return LatestCell{ID: id, Page: histPage[id]} }
	c := LatestComparison{A: ref(sc.A), B: ref(sc.B), Computed: sc.Computed, Options: cmp.Options, Tests: cmp.Tests,
		Latency: []LatestRow{}, Share: []LatestRow{}}
	c.OtherOptions = cmp.Options.Alpha != opts.Alpha || cmp.Options.MinMedianChange != opts.MinMedianChange ||
		cmp.Options.MinShareChange != opts.MinShareChange || cmp.Options.Confidence != opts.Confidence ||
		cmp.Correction != compare.Correction
	c.Worse, c.Better = len(cmp.Regressions()), len(cmp.Improvements())
	for _, r := range cmp.Rows {
		row := LatestRow{Cell: cell(r.Cell), Metric: r.Metric, A: latestSide(r.A), B: latestSide(r.B),
			Change: compare.Change(r), Verdict: compare.Verdict(r), P: compare.PValue(r.P), AdjustedP: compare.PValue(r.AdjustedP),
			Significant: r.Significant, Regression: r.Regression(), Improvement: r.Significant && r.Direction == compare.Better,
			Warned: len(r.Warnings) > 0}
		for _, w := range r.Warnings {
			c.Warnings = append(c.Warnings, LatestWarning{Cell: r.Cell, Metric: r.Metric, Text: w})
		}
		if r.Metric == compare.Latency {
			c.Latency = append(c.Latency, row)
			continue
		}
		row.Symptom = "at 5 s"
		if r.Metric == compare.HitShare {
			row.Symptom = "gRPC hit"
		}
		c.Share = append(c.Share, row)
	}
	for _, id := range cmp.OnlyA {
		c.OnlyA = append(c.OnlyA, cell(id))
	}
	for _, id := range cmp.OnlyB {
		c.OnlyB = append(c.OnlyB, cell(id))
	}
	for _, u := range cmp.Unmeasured {
		c.Unmeasured = append(c.Unmeasured, LatestUnmeasured{Cell: cell(u.Cell), A: presenceText(u.A), B: presenceText(u.B)})
	}
	return c, nil
}

// decodeComparison reads compare's JSON. Its non-finite numbers are null
// there, which would decode as 0: they are put back as what compare means
// by them (an interval too wide for the sample, a ratio over a zero median).
func decodeComparison(data []byte) (*compare.Comparison, error) {
	var cmp compare.Comparison
	if err := json.Unmarshal(data, &cmp); err != nil {
		return nil, err
	}
	type side struct {
		Low  *float64 `json:"median_low_ms"`
		High *float64 `json:"median_high_ms"`
	}
	var nulls struct {
		Rows []struct {
			Change *float64 `json:"change"`
			A, B   side
		} `json:"rows"`
	}
	if err := json.Unmarshal(data, &nulls); err != nil {
		return nil, err
	}
	fix := func(s *compare.Side, n side) {
		if n.Low == nil {
			s.MedianLowMS = compare.Float(math.Inf(-1))
		}
		if n.High == nil {
			s.MedianHighMS = compare.Float(math.Inf(1))
		}
	}
	for i := range cmp.Rows {
		n := nulls.Rows[i]
		if n.Change == nil {
			cmp.Rows[i].Change = compare.Float(math.Inf(1))
		}
		fix(&cmp.Rows[i].A, n.A)
		fix(&cmp.Rows[i].B, n.B)
	}
	return &cmp, nil
}

func latestSide(s compare.Side) LatestSide {
	return LatestSide{Median: compare.Duration(s.MedianMS), CI: compare.HalfWidth(s), P99: compare.Duration(s.P99MS), N: s.Lookups,
		Share: compare.Percent(s.Share), Events: s.Events}
}

// The formats below are `labrun compare`'s (pkg/compare/format.go), so the
// page reads as its text output does.

func presenceText(p compare.Presence) string {
	s := fmt.Sprintf("%s, %d lookups", p.State, p.Lookups)
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	return s
}
