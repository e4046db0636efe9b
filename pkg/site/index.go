// Package site builds a static web site over many runs: an index of the runs,
// each run's report page, a grid of every claim and expectation across runs,
// the history of every cell seen in two runs or more, and each scenario's
// newest run compared with the one before it. Its machine-readable
// index (index.json, schema labrun.dev/site/v1) holds everything the pages
// show, so a later build over new runs alone keeps the history of the old
// ones. docs/site.md describes the pages and the format.
package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
)

// Schema names the version of index.json; change it when a field changes
// meaning or goes away (adding one is compatible).
const Schema = "labrun.dev/site/v1"

// IndexFile is the index's name in the site directory.
const IndexFile = "index.json"

// Index is index.json: every run the site has seen, newest first.
type Index struct {
	Schema    string    `json:"schema"`
	Generated time.Time `json:"generated"`
	Runs      []Run     `json:"runs"`
	// Comparisons are the latest comparisons the site could compute, one
	// per scenario (latest.html); absent in an index written before them.
	Comparisons []StoredComparison `json:"comparisons,omitempty"`
}

// Run is one run as the site shows it. A run whose directory could not be
// read has Problem set and nothing but its name and date.
type Run struct {
	Name string `json:"name"`
	// Date is when the run started (env.json), else the date in its name
	// (scenario-YYYYMMDD-HHMMSS, as labrun run names them); zero if neither.
	Date time.Time `json:"date,omitzero"`
	// Source says what the numbers were read from: "summary.json", or
	// "raw files" when the analysis was rebuilt; Note says why.
	Source  string `json:"source,omitempty"`
	Note    string `json:"note,omitempty"`
	Problem string `json:"problem,omitempty"` // why the run is listed but not shown
	// Page is the run's page, relative to the site root; empty when none.
	Page string `json:"page,omitempty"`

	Scenario        string  `json:"scenario,omitempty"`
	Kernel          string  `json:"kernel,omitempty"`
	Kubernetes      string  `json:"kubernetes,omitempty"`
	Shapes          []Shape `json:"shapes,omitempty"`
	EmulatorProfile string  `json:"emulator_profile,omitempty"`

	CellStates        StateCounts   `json:"cell_states"`
	ClaimVerdicts     VerdictCounts `json:"claim_verdicts"`
	ExpectationCounts ExpectCounts  `json:"expectation_verdicts"`

	Claims       []ClaimResult   `json:"claims,omitempty"`
	Expectations []expect.Result `json:"expectations,omitempty"`
	Cells        []CellResult    `json:"cells,omitempty"`

	// pageSource is the report page to put under Page with the site's
	// navigation, when it is the run directory's own; empty otherwise.
	pageSource string
	// dir is the run directory read in this build; empty for a run kept
	// from the earlier index.
	dir string
}

// OK reports whether the run was read (it has data and a page).
func (r *Run) OK() bool { return r.Problem == "" }

// Shape is one cluster of the run: the axes that decide how DNS travels.
type Shape struct {
	Cluster    string `json:"cluster"`
	PodNetwork string `json:"pod_network,omitempty"`
	KubeProxy  string `json:"kube_proxy,omitempty"`
	DNS        string `json:"dns,omitempty"`
}

func (s Shape) String() string {
	return fmt.Sprintf("%s: %s, %s, %s", s.Cluster, orDash(s.PodNetwork), orDash(s.KubeProxy), orDash(s.DNS))
}

// StateCounts counts a run's cells by state.
type StateCounts struct {
	Complete   int `json:"complete"`
	Incomplete int `json:"incomplete"`
	NotRun     int `json:"not_run"`
}

// VerdictCounts counts a run's claims by verdict.
type VerdictCounts struct {
	Pass   int `json:"pass"`
	Fail   int `json:"fail"`
	NotRun int `json:"not_run"`
}

// ExpectCounts counts a run's expectations by verdict; all zero when the
// scenario has no expect: block (or summary.json predates it).
type ExpectCounts struct {
	Met          int `json:"met"`
	Broken       int `json:"broken"`
	NotEvaluated int `json:"not_evaluated"`
}

// ClaimResult is one claim's verdict on a run.
type ClaimResult struct {
	N        int             `json:"n"`
	Verdict  analyze.Verdict `json:"verdict"`
	Evidence string          `json:"evidence"`
}

// CellResult is what the site keeps of one cell of a run: the numbers its
// history shows. A pointer field is absent when the run has no such number
// (no samples, no comparison, no emulator, not a gRPC cell).
type CellResult struct {
	ID         string        `json:"id"`
	Backend    string        `json:"backend"`
	Mitigation string        `json:"mitigation"`
	Load       string        `json:"load,omitempty"`
	Chaos      string        `json:"chaos,omitempty"`
	State      results.State `json:"state"`
	Reason     string        `json:"reason,omitempty"`
	Lookups    uint64        `json:"lookups"`
	P50MS      *float64      `json:"p50_ms,omitempty"`
	P99MS      *float64      `json:"p99_ms,omitempty"`
	// Against the cell's baseline (mitigation none), with the run's
	// bootstrap interval: analyze gives intervals for ratios only.
	P99Ratio  *analyze.Interval `json:"p99_ratio,omitempty"`
	MeanRatio *analyze.Interval `json:"mean_ratio,omitempty"`
	ShareAt5s *float64          `json:"share_at_5s_multiples,omitempty"`
	HitShare  *float64          `json:"hit_share,omitempty"` // gRPC cells only
	// Counter growth during the cell, summed over nodes: the emulator's
	// drops (absent where it did not run) next to the kernel's own.
	EmulatorDropped *uint64 `json:"emulator_dropped,omitempty"`
	InsertFailed    *uint64 `json:"insert_failed,omitempty"`
	ClashRes        *uint64 `json:"clashres,omitempty"`
}

// Measured reports whether the cell completed with samples: only those are
// drawn in its history (the table lists every state).
func (c *CellResult) Measured() bool {
	return c.State == results.Complete && c.Lookups > 0 && c.P50MS != nil
}

// ErrSchema is wrapped by ReadIndex's error for an index of another schema.
var ErrSchema = errors.New("unknown index schema")

// ReadIndex reads dir's index.json; ok is false when there is none.
func ReadIndex(path string) (idx *Index, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read site index: %w", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if head.Schema != Schema {
		return nil, false, fmt.Errorf("%s: field schema is %q, this labrun reads %q: %w", path, head.Schema, Schema, ErrSchema)
	}
	// Added fields keep the schema: a newer labrun's index reads here.
	idx = &Index{}
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return idx, true, nil
}

// Merge adds runs to idx: a run of the same name replaces the one idx has
// (the run at hand is the newer reading of it). The result is sorted newest
// first.
func (idx *Index) Merge(runs []Run) {
	byName := map[string]int{}
	for i, r := range idx.Runs {
		byName[r.Name] = i
	}
	for _, r := range runs {
		if i, ok := byName[r.Name]; ok {
			idx.Runs[i] = r
			continue
		}
		byName[r.Name] = len(idx.Runs)
		idx.Runs = append(idx.Runs, r)
	}
	SortRuns(idx.Runs)
}

// SortRuns orders runs newest first; runs of unknown date come last, and
// runs of one date by name, descending (names end in their start time).
func SortRuns(runs []Run) {
	slices.SortStableFunc(runs, func(a, b Run) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
}

// Usable returns the runs that were read, newest first.
func (idx *Index) Usable() []*Run {
	var out []*Run
	for i := range idx.Runs {
		if idx.Runs[i].OK() {
			out = append(out, &idx.Runs[i])
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
