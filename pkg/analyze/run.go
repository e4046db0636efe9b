package analyze

import (
	"fmt"
	"hash/fnv"
	"strings"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// Cell is one cell's analysis.
type Cell struct {
	ID         string   `json:"id"`
	Shape      string   `json:"shape"`
	Cluster    string   `json:"cluster"`
	Resolver   string   `json:"resolver"` // as the scenario names it
	Backend    string   `json:"backend"`  // what the probe ran
	Mitigation string   `json:"mitigation"`
	Ignored    []string `json:"ignored,omitempty"` // members the back end is known to ignore
	Names      string   `json:"names"`
	NameKinds  []string `json:"name_kinds"`
	Load       string   `json:"load"`
	// LookupsInFlightPerNode is podsPerNode × concurrency: the load axis of claim 11.
	LookupsInFlightPerNode int    `json:"lookups_in_flight_per_node"`
	Chaos                  string `json:"chaos"`
	Emulator               bool   `json:"emulator"`
	EmulatorProfile        string `json:"emulator_profile,omitempty"`
	Repeat                 int    `json:"repeat"`

	State  results.State `json:"state"`
	Reason string        `json:"reason,omitempty"`

	Stats    *Stats  `json:"stats,omitempty"`
	Counters *Deltas `json:"counters,omitempty"`
	// CountersNotRead says why the cell has no counters, when they were
	// not read (results.Counters.NotRead): never zeros.
	CountersNotRead string                 `json:"counters_not_read,omitempty"`
	Capture         *results.CaptureCounts `json:"capture,omitempty"`
	Comparison      *Comparison            `json:"comparison,omitempty"`

	acc         *Accumulator
	baselineKey string
	cell        scenario.Cell
	noStatus    bool // the run never wrote this cell's status
}

// Scenario is the cell as the recorded scenario expands it.
func (c *Cell) Scenario() scenario.Cell { return c.cell }

// Failed reports whether the run was to measure the cell and did not: it is
// incomplete, or the run never reached it. A cell the scenario does not run
// (not applicable) or the host could not (a not-run status with the host's
// reason) has not failed.
func (c *Cell) Failed() bool {
	return c.cell.Runs() && (c.State == results.Incomplete || c.noStatus)
}

// Histogram is the cell's latency histogram (µs), nil when it has no samples.
func (c *Cell) Histogram() *Histogram {
	if c.acc == nil {
		return nil
	}
	return c.acc.Histogram()
}

// Has reports whether the cell's mitigation set contains id.
func (c *Cell) Has(id string) bool { return c.cell.Mitigations.Has(id) }

// IsBaseline reports whether the cell's mitigation is none.
func (c *Cell) IsBaseline() bool { return c.cell.Mitigations.IsNone() }

// Measured reports whether the cell completed with samples.
func (c *Cell) Measured() bool {
	return c.State == results.Complete && c.Stats != nil && c.Stats.Count > 0
}

// Analysis is a run's analysis.
type Analysis struct {
	Run      string      `json:"run"`
	Scenario string      `json:"scenario"`
	Env      results.Env `json:"env"`
	Cells    []*Cell     `json:"cells"`
	Claims   []Claim     `json:"claims"`
	// Stray lists status files of cells the recorded scenario does not have
	// (the scenario was edited after the run): they are not analysed.
	Stray []string `json:"stray,omitempty"`
}

// Cell returns the cell with id, or nil.
func (a *Analysis) Cell(id string) *Cell {
	for _, c := range a.Cells {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Load reads a run from disk and analyses it: the recorded scenario gives
// every cell, status files say how far each got, raw files are streamed
// once. A cell whose collected samples differ from its probes' summaries is
// marked incomplete, whatever its status file says.
func Load(run results.RunDir) (*Analysis, error) {
	s, err := run.ReadScenario()
	if err != nil {
		return nil, fmt.Errorf("analyze %s: %w", run.Dir, err)
	}
	env, _, err := run.ReadEnv()
	if err != nil {
		return nil, fmt.Errorf("analyze %s: %w", run.Dir, err)
	}
	a := &Analysis{Run: run.Name(), Scenario: s.Metadata.Name, Env: env}
	for _, sc := range s.Expand() {
		c := newCell(sc)
		if err := load(run, c, sc); err != nil {
			return nil, fmt.Errorf("analyze %s: cell %s: %w", run.Dir, c.ID, err)
		}
		a.Cells = append(a.Cells, c)
	}
	recorded, err := run.StatusCells()
	if err != nil {
		return nil, fmt.Errorf("analyze %s: %w", run.Dir, err)
	}
	for _, id := range recorded {
		if a.Cell(id) == nil {
			a.Stray = append(a.Stray, id)
		}
	}
	a.Finish()
	return a, nil
}

func newCell(sc scenario.Cell) *Cell {
	var kinds []string
	for _, n := range sc.Names.Names {
		kinds = append(kinds, n.Kind)
	}
	c := &Cell{
		ID: sc.ID, Shape: sc.Shape.ID, Cluster: sc.Shape.Cluster.Name,
		Resolver: sc.Resolver, Backend: sc.Backend, Mitigation: sc.MitigationID(), Ignored: sc.Ignored,
		Names: sc.Names.ID, NameKinds: kinds, Load: sc.LoadID,
		LookupsInFlightPerNode: sc.Load.PodsPerNode * sc.Load.Concurrency,
		Chaos:                  sc.Chaos.ID(), Emulator: sc.UnderEmulator(), Repeat: sc.Repeat,
		cell: sc,
	}
	if c.Emulator {
		c.EmulatorProfile = sc.Chaos.RaceEmulator.Profile
	}
	// The baseline shares everything but the mitigation set; a cell of a
	// cluster-level mitigation compares with the plain cluster's.
	c.baselineKey = strings.Join([]string{c.Cluster, c.Resolver, c.Names, c.Load, c.Chaos, fmt.Sprint(c.Repeat)}, "|")
	return c
}

// RecordedState is the state a run's status file gives a cell of its
// scenario; a cell without one did not run. The samples can still demote a
// complete cell: see results.CheckProbes.
func RecordedState(run results.RunDir, sc scenario.Cell) (results.State, string, error) {
	st, ok, err := run.ReadStatus(sc.ID)
	switch {
	case err != nil:
		return "", "", err
	case ok:
		return st.State, st.Reason, nil
	case !sc.Runs():
		return results.NotRun, sc.NotRun, nil
	}
	return results.NotRun, noStatusReason, nil
}

// noStatusReason is the reason of a cell the run did not reach.
const noStatusReason = "no status file: the run did not reach this cell"

func load(run results.RunDir, c *Cell, sc scenario.Cell) error {
	var err error
	if c.State, c.Reason, err = RecordedState(run, sc); err != nil {
		return err
	}
	if c.State == results.NotRun && c.Reason == noStatusReason && sc.Runs() {
		c.noStatus = true
	}
	if c.State == results.NotRun {
		return nil
	}
	c.acc = NewAccumulator(c.ID)
	probes, err := run.ReadLookups(c.ID, func(l results.Lookup) { c.acc.Add(l.DurationUS, l.Result) })
	if err != nil {
		return err
	}
	if problem := results.CheckProbes(probes); problem != "" && c.State == results.Complete {
		c.State, c.Reason = results.Incomplete, problem
	}
	st2 := c.acc.Stats()
	c.Stats = &st2
	if counters, ok, err := run.ReadCounters(c.ID); err != nil {
		return err
	} else if ok && counters.NotRead != "" {
		c.CountersNotRead = counters.NotRead
	} else if ok {
		d := CounterDeltas(counters)
		c.Counters = &d
	}
	if capt, ok, err := run.ReadCaptureSummary(c.ID); err != nil {
		return err
	} else if ok {
		counts := capt.Counts()
		c.Capture = &counts
	}
	return nil
}

// Finish compares each cell with its baseline and evaluates the claims. Run
// calls it; call it again after changing cells by hand (tests do).
func (a *Analysis) Finish() {
	base := map[string]*Cell{}
	for _, c := range a.Cells {
		if c.IsBaseline() {
			base[c.baselineKey] = c
		}
	}
	for _, c := range a.Cells {
		c.Comparison = nil
		b := base[c.baselineKey]
		if b == nil || b == c || !c.Measured() || !b.Measured() {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(c.ID))
		mean, p99, ok := Compare(c.acc.Reservoir(), b.acc.Reservoir(), h.Sum64())
		if ok {
			c.Comparison = &Comparison{Baseline: b.ID, MeanRatio: mean, P99Ratio: p99,
				Resamples: BootstrapResamples, Level: ConfidenceLevel}
		}
	}
	a.Claims = EvaluateClaims(a)
}

// baselineOf returns c's baseline cell, or nil.
func (a *Analysis) baselineOf(c *Cell) *Cell {
	for _, b := range a.Cells {
		if b.IsBaseline() && b.baselineKey == c.baselineKey {
			return b
		}
	}
	return nil
}
