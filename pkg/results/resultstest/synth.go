// Package resultstest writes synthetic runs to disk, through pkg/results, for
// tests and benchmarks of analysis and reports: no cluster needed.
package resultstest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/results/emulator"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/scenario"
)

// Cell says what a synthetic cell's data look like.
type Cell struct {
	Lookups int     // samples in all (split over Pods)
	Pods    int     // probe files; default 2
	Delayed float64 // share of lookups delayed by one 5 s retry (a tenth of them by two)
	// gRPC calls: the share that missed a 3 s deadline (result timeout,
	// DEADLINE_EXCEEDED), and the share that succeeded but only after 2 s.
	DeadlineExceeded float64
	SlowOK           float64
	// Seed is mixed into the generator (seeded by the cell id), so two runs
	// of one spec can differ as two real runs would; 0 keeps the default data.
	Seed uint64
	// MedianUS is the median of an undelayed lookup (log-normal); default 1500.
	MedianUS float64
	// Counters, summed over nodes (split over two nodes).
	EmulatorDropped uint64
	InsertFailed    uint64
	ClashRes        uint64
	NoCounters      bool
	Capture         *results.CaptureSummary
	// State of the cell; default complete. LoseSamples drops that many
	// sample lines after the summary counted them (an accounting failure).
	State       results.State
	Reason      string
	LoseSamples int
}

// Spec gives each cell of the scenario its synthetic data; a cell for which
// it returns ok=false gets no files at all (as if the run stopped before it).
type Spec func(scenario.Cell) (Cell, bool)

// WriteRun parses scenarioYAML, writes it and env.json under root/name, and
// writes each runnable cell's data as spec says.
func WriteRun(root, name, scenarioYAML string, spec Spec) (results.RunDir, error) {
	s, err := scenario.Parse(name+".yaml", []byte(scenarioYAML))
	if err != nil {
		return results.RunDir{}, err
	}
	run, err := results.Create(root, name)
	if err != nil {
		return results.RunDir{}, err
	}
	if err := run.WriteScenario(s); err != nil {
		return run, err
	}
	if err := run.WriteEnv(results.Env{Kernel: "6.18.0-synthetic", Kubernetes: scenario.DefaultKubernetes, Emulator: true,
		Extra: map[string]string{"generator": "resultstest"}}); err != nil {
		return run, err
	}
	for _, c := range s.Expand() {
		if !c.Runs() {
			if err := run.WriteStatus(results.Status{Cell: c.ID, State: results.NotRun, Reason: c.NotRun}); err != nil {
				return run, err
			}
			continue
		}
		cs, ok := spec(c)
		if !ok {
			continue
		}
		if err := writeCell(run, c, cs); err != nil {
			return run, fmt.Errorf("cell %s: %w", c.ID, err)
		}
	}
	return run, nil
}

func writeCell(run results.RunDir, c scenario.Cell, cs Cell) error {
	if cs.Pods == 0 {
		cs.Pods = 2
	}
	if cs.MedianUS == 0 {
		cs.MedianUS = 1500
	}
	if cs.State == "" {
		cs.State = results.Complete
	}
	h := fnv.New64a()
	h.Write([]byte(c.ID))
	rng := rand.New(rand.NewPCG(h.Sum64(), 7^cs.Seed))
	var total uint64
	for p := range cs.Pods {
		pod := fmt.Sprintf("probe-%d", p)
		n := cs.Lookups / cs.Pods
		if p == 0 {
			n += cs.Lookups % cs.Pods
		}
		if err := writePod(run, c, pod, n, cs, rng, p == 0); err != nil {
			return err
		}
		total += uint64(n)
	}
	collected := total - uint64(cs.LoseSamples)
	if err := run.WriteStatus(results.Status{Cell: c.ID, State: cs.State, Reason: cs.Reason, Probes: cs.Pods,
		Expected: total, Collected: collected}); err != nil {
		return err
	}
	if !cs.NoCounters {
		nodes := map[string]results.NodeCounters{}
		for i, node := range []string{"lab-worker", "lab-worker2"} {
			share := func(v uint64) uint64 { return v/2 + uint64(i)*(v%2) }
			nc := results.NodeCounters{
				// entries is a level: it falls on one node, rises on the other.
				Before: map[string]uint64{"entries": 300 - 200*uint64(i), "insert_failed": 10, "clashres": 100, "drop": 0, "found": 5},
				After: map[string]uint64{"entries": 200 + 100*uint64(i), "insert_failed": 10 + share(cs.InsertFailed), "clashres": 100 + share(cs.ClashRes),
					"drop": share(cs.InsertFailed), "found": 5},
			}
			if c.UnderEmulator() {
				// The agent's snapshot carries its settings next to its counts.
				settings := emulator.Settings{Port: 53, WindowUS: 1000}
				nc.EmulatorBefore = &emulator.Record{Settings: settings}
				nc.EmulatorAfter = &emulator.Record{Counts: emulator.Counts{Seen: uint64(cs.Lookups), Dropped: share(cs.EmulatorDropped)}, Settings: settings}
			}
			nodes[node] = nc
		}
		if err := run.WriteCounters(results.Counters{Cell: c.ID, Nodes: nodes}); err != nil {
			return err
		}
	}
	if cs.Capture != nil {
		if err := results.WriteJSON(run.CaptureSummaryPath(c.ID), cs.Capture); err != nil {
			return err
		}
	}
	return nil
}

func writePod(run results.RunDir, c scenario.Cell, pod string, n int, cs Cell, rng *rand.Rand, lose bool) error {
	f, err := run.CreateRaw(c.ID, pod)
	if err != nil {
		return err
	}
	enc := sample.NewEncoder(f)
	names := c.Names.Names
	byResult := map[sample.Result]uint64{}
	start := int64(1_790_000_000_000_000_000)
	for i := range n {
		d := int64(cs.MedianUS * math.Exp(0.5*rng.NormFloat64()))
		if rng.Float64() < cs.Delayed {
			d += 5_000_000
			if rng.IntN(10) == 0 {
				d += 5_000_000
			}
		}
		result, errText := sample.OK, ""
		if cs.DeadlineExceeded+cs.SlowOK > 0 { // no extra draw otherwise: other cells keep their data
			switch u := rng.Float64(); {
			case u < cs.DeadlineExceeded:
				d, result, errText = 3_000_000+d, sample.Timeout, "DEADLINE_EXCEEDED: Deadline Exceeded"
			case u < cs.DeadlineExceeded+cs.SlowOK:
				d += 2_000_000
			}
		}
		nm := names[i%len(names)]
		s := &sample.Sample{StartNS: start + int64(i)*20_000_000, DurationUS: d, Cell: c.ID, Resolver: c.Backend,
			Mitigation: c.MitigationID(), Name: nm.Name, NameKind: sample.NameKind(nm.Kind), Result: result,
			ErrorText: errText, Answers: 1, Pod: pod, Node: "lab-worker", Seq: uint64(i)}
		byResult[s.Result]++
		if lose && i < cs.LoseSamples {
			continue
		}
		if err := enc.Sample(s); err != nil {
			f.Abort()
			return err
		}
	}
	if err := enc.Summary(&sample.Summary{Resolver: c.Backend, Pod: pod, Node: "lab-worker", Lookups: uint64(n), ByResult: byResult, Complete: true}); err != nil {
		f.Abort()
		return err
	}
	if err := enc.Flush(); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// Shards splits a run into n shard runs under root, named <run>-shard-<i>,
// as labrun run --shard i/N writes them: each has the scenario, env.json,
// shard.json and the files of its cells. The cells the scenario runs are
// dealt out in turn, in the scenario's order (a cell the run has no status
// for is still planned, so its shard is incomplete); not-run statuses go to
// shard 1 only, as the runner records them there. Files are hard-linked
// where they can be (results.CopyCell): labrun writes no file in place, so a
// test may still rewrite or remove a shard's files through pkg/results.
func Shards(run results.RunDir, root string, n int) ([]results.RunDir, error) {
	s, err := run.ReadScenario()
	if err != nil {
		return nil, err
	}
	shards := make([]results.RunDir, n)
	plans := make([]results.Shard, n)
	for i := range n {
		if shards[i], err = results.Create(root, fmt.Sprintf("%s-shard-%d", run.Name(), i+1)); err != nil {
			return nil, err
		}
		if err := results.CopyFile(shards[i].ScenarioPath(), run.ScenarioPath()); err != nil {
			return nil, err
		}
		if err := results.CopyFile(shards[i].EnvPath(), run.EnvPath()); err != nil {
			return nil, err
		}
		plans[i] = results.Shard{Index: i + 1, Count: n}
	}
	k := 0
	for _, c := range s.Expand() {
		i := 0
		if c.Runs() {
			i = k % n
			k++
			plans[i].Cells = append(plans[i].Cells, c.ID)
		}
		if _, err := results.CopyCell(shards[i], run, c.ID, true); err != nil {
			return nil, err
		}
	}
	for i := range n {
		if err := shards[i].WriteShard(plans[i]); err != nil {
			return nil, err
		}
	}
	return shards, nil
}
