package compare

import (
	"errors"
	"fmt"
	"io/fs"
	"math"

	"golang.org/x/sync/errgroup"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// ErrNotARun is wrapped by the error of Runs when a directory is not a run:
// it has no scenario.yaml that loads. The command reports it as bad input.
var ErrNotARun = errors.New("not a run directory")

// Runs compares run b against run a. Cells are matched by id; for each cell
// measured in both, every sample of both is read from raw/ (streamed, at most
// opts.MaxSamples durations kept per side), and two rows are made.
func Runs(a, b results.RunDir, opts Options) (*Comparison, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	sa, err := readScenario(a)
	if err != nil {
		return nil, err
	}
	sb, err := readScenario(b)
	if err != nil {
		return nil, err
	}
	cmp := &Comparison{Schema: Schema, A: RunInfo{Dir: a.Dir, Scenario: sa.Metadata.Name},
		B: RunInfo{Dir: b.Dir, Scenario: sb.Metadata.Name}, Options: opts, Correction: Correction,
		OnlyA: []string{}, OnlyB: []string{}, Unmeasured: []Unmeasured{}, Rows: []Row{}}
	cellsA, cellsB := sa.Expand(), sb.Expand()
	inB := map[string]scenario.Cell{}
	for _, c := range cellsB {
		inB[c.ID] = c
	}
	if err := checkPairs(opts.Pairs, cellsA, inB); err != nil {
		return nil, err
	}
	paired := map[string]bool{} // B's cells, compared
	for _, ca := range cellsA {
		idB := ca.ID
		if p, ok := opts.Pairs[ca.ID]; ok {
			idB = p
		}
		cb, ok := inB[idB]
		if !ok {
			cmp.OnlyA = append(cmp.OnlyA, ca.ID)
			continue
		}
		paired[idB] = true
		if err := cmp.addCell(a, b, ca, cb, opts); err != nil {
			return nil, fmt.Errorf("compare cell %s: %w", ca.ID, err)
		}
	}
	for _, cb := range cellsB {
		if !paired[cb.ID] {
			cmp.OnlyB = append(cmp.OnlyB, cb.ID)
		}
	}
	cmp.decide(opts)
	return cmp, nil
}

// checkPairs refuses a pair that names a cell its run does not have.
func checkPairs(pairs map[string]string, cellsA []scenario.Cell, inB map[string]scenario.Cell) error {
	inA := map[string]bool{}
	for _, c := range cellsA {
		inA[c.ID] = true
	}
	var errs []error
	for a, b := range pairs {
		if !inA[a] {
			errs = append(errs, fmt.Errorf("pair %s=%s: run A has no cell %s", a, b, a))
		}
		if _, ok := inB[b]; !ok {
			errs = append(errs, fmt.Errorf("pair %s=%s: run B has no cell %s", a, b, b))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrOptions, errors.Join(errs...))
	}
	return nil
}

func readScenario(r results.RunDir) (*scenario.Scenario, error) {
	s, err := r.ReadScenario()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: no scenario.yaml (want a directory written by `labrun run`, e.g. results/<run>)", r.Dir, ErrNotARun)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", r.Dir, ErrNotARun, err)
	}
	return s, nil
}

// addCell reads one cell of both runs and adds its rows, or records why it
// cannot be compared.
func (cmp *Comparison) addCell(a, b results.RunDir, ca, cb scenario.Cell, opts Options) error {
	// The back end decides the symptom; a cell id names one back end, but
	// a scenario edited between runs could differ: gRPC if either is.
	grpc := analyze.IsGRPCBackend(ca.Backend) || analyze.IsGRPCBackend(cb.Backend)
	// Reading (JSON scanning) is most of the time: both runs at once.
	var (
		da, db *cellData
		pa, pb Presence
		g      errgroup.Group
	)
	g.Go(func() (err error) { da, pa, err = readCell(a, "a", ca, grpc, opts.MaxSamples); return err })
	g.Go(func() (err error) { db, pb, err = readCell(b, "b", cb, grpc, opts.MaxSamples); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	if da == nil || db == nil {
		cmp.Unmeasured = append(cmp.Unmeasured, Unmeasured{Cell: ca.ID, A: pa, B: pb}) // by A's id
		return nil
	}
	sideA, sideB := da.side(opts.Confidence), db.side(opts.Confidence)

	pLat, err := mannWhitneyP(da.xs, db.xs)
	if err != nil {
		return fmt.Errorf("U test: %w", err)
	}
	id := ca.ID
	if cb.ID != ca.ID {
		id = ca.ID + " vs " + cb.ID
	}
	lat := Row{Cell: id, Backend: ca.Backend, Metric: Latency, A: sideA, B: sideB, P: pLat,
		Change: Float(ratio(sideB.MedianMS, sideA.MedianMS))}

	metric := Share5s
	if grpc {
		metric = HitShare
	}
	pShare := fisherExactP(da.events, da.lookups-da.events, db.events, db.lookups-db.events)
	share := Row{Cell: id, Backend: ca.Backend, Metric: metric, A: sideA, B: sideB, P: pShare,
		Change: Float(100 * (sideB.Share - sideA.Share))}
	cmp.Rows = append(cmp.Rows, lat, share)
	return nil
}

// readCell reads a cell of one run; data is nil when the cell is not
// measured (not complete, or no samples), and p says why.
func readCell(r results.RunDir, side string, sc scenario.Cell, grpc bool, maxSamples int) (*cellData, Presence, error) {
	state, reason, err := analyze.RecordedState(r, sc)
	if err != nil {
		return nil, Presence{}, err
	}
	p := Presence{State: string(state), Reason: reason}
	if state == results.NotRun {
		return nil, p, nil
	}
	d := newCellData(side, sc.ID, grpc, maxSamples)
	probes, err := r.ReadLookups(sc.ID, d.add)
	if err != nil {
		return nil, p, err
	}
	p.Lookups = d.lookups
	// As the analysis does: samples that disagree with the probes'
	// summaries make a complete cell incomplete.
	if problem := results.CheckProbes(probes); problem != "" && state == results.Complete {
		p.State, p.Reason = string(results.Incomplete), problem
	}
	if p.State != string(results.Complete) || d.lookups == 0 {
		if p.State == string(results.Complete) {
			p.Reason = "no samples"
		}
		return nil, p, nil
	}
	return d, p, nil
}

func ratio(b, a float64) float64 {
	switch {
	case a != 0:
		return b / a
	case b == 0:
		return 1
	}
	return math.Inf(1)
}
