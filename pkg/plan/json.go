package plan

import (
	"time"

	"labrun.dev/labrun/pkg/scenario"
)

// Document is the plan as `labrun plan --json` prints it (docs/scenario-reference.md).
type Document struct {
	Scenario string `json:"scenario"`
	Totals   Totals `json:"totals"`
	Cells    []Cell `json:"cells"`
	// Shards, with --shards N: all N, empty ones included (cells: []).
	Shards []ShardDoc `json:"shards,omitempty"`
}

// Totals count the cells and shapes of the plan.
type Totals struct {
	Cells         int `json:"cells"`
	WillRun       int `json:"will_run"`
	NotRun        int `json:"not_run"`
	Shapes        int `json:"shapes"`
	ShapesWillRun int `json:"shapes_will_run"` // shapes with a cell to run: the clusters made
	// EstimateSeconds is the wall time of the whole plan on one machine.
	EstimateSeconds int64 `json:"estimate_seconds"`
}

// Status of a cell in the plan.
const (
	WillRun = "will-run"
	NotRun  = "not-run"
)

// Cell is one cell of the plan.
type Cell struct {
	ID         string   `json:"id"`
	Shape      string   `json:"shape"`
	Resolver   string   `json:"resolver"`
	Backend    string   `json:"backend"`
	Mitigation string   `json:"mitigation"`
	Names      string   `json:"names"`
	Load       string   `json:"load"`
	Chaos      string   `json:"chaos"`
	Repeat     int      `json:"repeat"`
	Status     string   `json:"status"`           // will-run or not-run
	Reason     string   `json:"reason,omitempty"` // why not run
	Ignored    []string `json:"ignored,omitempty"`
	Shard      int      `json:"shard,omitempty"` // with --shards: the shard that runs it
}

// ShardDoc is one shard of the plan.
type ShardDoc struct {
	Shard           string   `json:"shard"` // i/N, as run --shard takes it
	Index           int      `json:"index"`
	Count           int      `json:"count"`
	Cells           []string `json:"cells"`
	Shapes          []string `json:"shapes"`
	EstimateSeconds int64    `json:"estimate_seconds"`
}

// NewDocument is the plan of the cells (as lab.PlanCells marks them), with
// the shards when there are any.
func NewDocument(name string, cells []scenario.Cell, shards []Shard, atOnce int) Document {
	d := Document{Scenario: name, Cells: make([]Cell, 0, len(cells))}
	in := map[string]int{}
	for _, s := range shards {
		for _, c := range s.Cells {
			in[c.ID] = s.Index
		}
		d.Shards = append(d.Shards, ShardDoc{
			Shard: s.String(), Index: s.Index, Count: s.Count,
			Cells: s.IDs(), Shapes: append([]string{}, s.Shapes...), EstimateSeconds: seconds(s.Estimate),
		})
	}
	for _, c := range cells {
		jc := Cell{
			ID: c.ID, Shape: c.Shape.ID, Resolver: c.Resolver, Backend: c.Backend, Mitigation: c.MitigationID(),
			Names: c.Names.ID, Load: c.LoadID, Chaos: c.Chaos.ID(), Repeat: c.Repeat,
			Status: WillRun, Ignored: c.Ignored, Shard: in[c.ID],
		}
		if !c.Runs() {
			jc.Status, jc.Reason = NotRun, c.NotRun
			d.Totals.NotRun++
		} else {
			d.Totals.WillRun++
		}
		d.Cells = append(d.Cells, jc)
	}
	d.Totals.Cells = len(cells)
	for _, ps := range scenario.Plan(cells) {
		d.Totals.Shapes++
		for _, c := range ps.Cells {
			if c.Runs() {
				d.Totals.ShapesWillRun++
				break
			}
		}
	}
	d.Totals.EstimateSeconds = seconds(scenario.EstimateWallTime(cells, atOnce))
	return d
}

func seconds(d time.Duration) int64 { return int64(d.Round(time.Second) / time.Second) }
