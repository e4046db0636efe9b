package results

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/results/emulator"
)

// State is how far a cell got.
type State string

const (
	Complete   State = "complete"   // every probe's summary matched the samples collected
	Incomplete State = "incomplete" // it ran, but something is missing; Reason says what
	NotRun     State = "not-run"    // it did not run; Reason says why
)

// Status is a cell's status file.
type Status struct {
	Cell   string `json:"cell"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Accounting: what the probes said they did, and what was collected.
	Probes    int       `json:"probes"`
	Expected  uint64    `json:"expected_samples"`
	Collected uint64    `json:"collected_samples"`
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
}

// WriteStatus records a cell's status.
func (r RunDir) WriteStatus(s Status) error {
	if err := checkName("cell", s.Cell); err != nil {
		return err
	}
	switch s.State {
	case Complete, Incomplete, NotRun:
	default:
		return fmt.Errorf("status of %s: unknown state %q", s.Cell, s.State)
	}
	if s.State != Complete && s.Reason == "" {
		return fmt.Errorf("status of %s: state %s needs a reason", s.Cell, s.State)
	}
	return WriteJSON(r.StatusPath(s.Cell), s)
}

// ReadStatus reads a cell's status; ok is false when it has none.
func (r RunDir) ReadStatus(cell string) (s Status, ok bool, err error) {
	err = ReadJSON(r.StatusPath(cell), &s)
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, false, nil
	}
	return s, err == nil, err
}

// StatusCells lists the cells that have a status file, sorted.
func (r RunDir) StatusCells() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(r.Dir, "status", "*.json"))
	if err != nil {
		return nil, err
	}
	cells := make([]string, len(files))
	for i, f := range files {
		cells[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	slices.Sort(cells)
	return cells, nil
}

// Counters are the node counters around one cell.
type Counters struct {
	Cell  string                  `json:"cell"`
	Nodes map[string]NodeCounters `json:"nodes"` // by node name
	// NotRead says why the nodes' counters were not read ("not read:
	// needs --allow-privileged" on an existing cluster): Nodes is then
	// empty, and no reader may take the counters for zero.
	NotRead string `json:"not_read,omitempty"`
}

// NodeCounters are one node's counters before and after a cell.
// Conntrack maps are keyed by /proc/net/stat/nf_conntrack column name
// (insert_failed, clashres, drop, ...) and summed over CPUs; the Emulator
// records are what the race emulator's agent said (its counts and
// settings), absent when the emulator did not run.
type NodeCounters struct {
	Before         map[string]uint64 `json:"before"`
	After          map[string]uint64 `json:"after"`
	EmulatorBefore *emulator.Record  `json:"emulator_before,omitempty"`
	EmulatorAfter  *emulator.Record  `json:"emulator_after,omitempty"`
}

// EmulatorCounts are the agent's counts before and after the cell; ok is
// false when the emulator did not run on the node.
func (n NodeCounters) EmulatorCounts() (before, after emulator.Counts, ok bool) {
	if n.EmulatorAfter == nil {
		return before, after, false
	}
	if n.EmulatorBefore != nil {
		before = n.EmulatorBefore.Counts
	}
	return before, n.EmulatorAfter.Counts, true
}

// WriteCounters records a cell's counters.
func (r RunDir) WriteCounters(c Counters) error {
	if err := checkName("cell", c.Cell); err != nil {
		return err
	}
	return WriteJSON(r.CountersPath(c.Cell), c)
}

// ReadCounters reads a cell's counters; ok is false when it has none.
func (r RunDir) ReadCounters(cell string) (c Counters, ok bool, err error) {
	err = ReadJSON(r.CountersPath(cell), &c)
	if errors.Is(err, fs.ErrNotExist) {
		return Counters{}, false, nil
	}
	return c, err == nil, err
}

// Env is what the run ran on.
type Env struct {
	Started    time.Time         `json:"started,omitzero"`
	Kernel     string            `json:"kernel"`
	Docker     string            `json:"docker,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Kubernetes string            `json:"kubernetes,omitempty"`
	Emulator   bool              `json:"emulator"`         // the race emulator ran in some cell
	Egress     string            `json:"egress,omitempty"` // what kept the clusters' traffic on the machine
	Images     []Image           `json:"images,omitempty"` // what ran, with digests
	Extra      map[string]string `json:"extra,omitempty"`  // anything else worth keeping
}

// EnvLabrunVersion is the key of Env.Extra naming the labrun build that made
// the run (its module version or VCS revision). labrun merge refuses runs
// whose values differ, as it refuses runs whose Kind differs (the kind module
// linked into labrun: the one build fact env.json has always recorded).
// labrun run records it (internal/version: git describe of the tree `make
// build` built); merge compares it when both runs have it.
const EnvLabrunVersion = "labrun_version"

// EnvMergedFrom is the key of Env.Extra that labrun merge sets in the run it
// writes: the names of the runs it joined, comma-separated. Each of their
// env.json files is kept whole under envs/ (EnvsDir).
const EnvMergedFrom = "merged_from"

// Image is one image the run used.
type Image struct {
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"`
	Source string `json:"source,omitempty"` // built | pulled | imported
}

// WriteEnv records env.json.
func (r RunDir) WriteEnv(e Env) error { return WriteJSON(r.EnvPath(), e) }

// ReadEnv reads env.json; ok is false when it is absent.
func (r RunDir) ReadEnv() (e Env, ok bool, err error) {
	err = ReadJSON(r.EnvPath(), &e)
	if errors.Is(err, fs.ErrNotExist) {
		return Env{}, false, nil
	}
	return e, err == nil, err
}

// Pending returns the cells, in the order given, that a resumed run still has
// to run: those with no status file or an incomplete one.
func (r RunDir) Pending(cells []string) ([]string, error) {
	var out []string
	for _, c := range cells {
		st, ok, err := r.ReadStatus(c)
		if err != nil {
			return nil, err
		}
		if !ok || st.State == Incomplete {
			out = append(out, c)
		}
	}
	return out, nil
}
