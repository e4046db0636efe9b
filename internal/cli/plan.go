package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/plan"
	"labrun.dev/labrun/pkg/scenario"
)

func newPlanCommand(s Streams) *cobra.Command {
	var (
		asJSON bool
		shards int
	)
	c := &cobra.Command{
		Use:   "plan FILE",
		Short: "List a scenario's cells by cluster shape: will run, or not run and why; estimated wall time",
		Long: `List a scenario's cells by cluster shape, each "will run" or "not run" with the
reason on this host (exactly as labrun run decides), and the estimated wall time.

--json prints the plan for machines: every cell (id, shape, resolver, back end,
mitigation, load, chaos, status will-run or not-run with the reason), the totals
and the estimate in seconds.

--shards N splits the cells that will run into N shards for N machines, each
run with labrun run FILE --shard i/N on a host like this one. A shape's cells
share one cluster, and every shard pays a cluster bring-up per shape it holds,
so shapes stay whole unless splitting one shortens the longest shard by more
than its extra cluster costs. All N
shards are listed, empty ones included. Cells that will not run are in no
shard: shard 1 records them. See docs/scenario-reference.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if c.Flags().Changed("shards") && (shards < 1 || shards > plan.MaxShards) {
				return UsageError{fmt.Errorf("--shards %d: want a number of shards N with 1 ≤ N ≤ %d", shards, plan.MaxShards)}
			}
			sc, err := scenario.LoadFile(args[0])
			if err != nil {
				return UsageError{err}
			}
			cells := lab.PlanCells(c.Context(), sc)
			var split []plan.Shard
			if shards > 0 {
				if split, err = plan.Split(cells, shards); err != nil {
					return UsageError{err}
				}
			}
			if asJSON {
				e := json.NewEncoder(s.Out)
				e.SetIndent("", "  ")
				return e.Encode(plan.NewDocument(sc.Metadata.Name, cells, split, sc.CellsAtOnce))
			}
			if split != nil {
				writeShards(s, args[0], sc, cells, split)
				return nil
			}
			writePlan(s, sc, cells)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (every cell, totals, the estimate in seconds; the shards with --shards)")
	c.Flags().IntVar(&shards, "shards", 0, fmt.Sprintf("split the cells that will run into N shards (1 ≤ N ≤ %d) for labrun run --shard i/N", plan.MaxShards))
	return c
}

// writeHeader is the plan's first line: cells, shapes, the estimate.
func writeHeader(s Streams, sc *scenario.Scenario, cells []scenario.Cell) {
	runs := 0
	for _, c := range cells {
		if c.Runs() {
			runs++
		}
	}
	fmt.Fprintf(s.Out, "scenario %s: %d cells on %d cluster shape(s); %d will run, %d not run; estimated wall time %s\n",
		sc.Metadata.Name, len(cells), len(scenario.Plan(cells)), runs, len(cells)-runs, scenario.EstimateWallTime(cells, sc.CellsAtOnce).Round(time.Second))
	running := scenario.Plan(runnable(cells))
	if families := scenario.Families(running, scenario.PlanLanes(running, sc.CellsAtOnce), true); len(families) < len(running) {
		fmt.Fprintf(s.Out, "%d cluster(s) for the %d shape(s) that run: shapes on the lab's pod network that differ only by %s share one, in turn (labrun run without --parallel or --retain)\n",
			len(families), len(running), strings.Join(mitigation.UndoneIDs(), ", "))
	}
}

func writePlan(s Streams, sc *scenario.Scenario, cells []scenario.Cell) {
	writeHeader(s, sc, cells)
	// The shapes whose cells run on the cluster of another (labrun run
	// without --parallel or --retain): the first of their family.
	served := map[string]string{}
	running := scenario.Plan(runnable(cells))
	for _, family := range scenario.Families(running, scenario.PlanLanes(running, sc.CellsAtOnce), true) {
		for _, i := range family[1:] {
			served[running[i].Shape.ID] = running[family[0]].Shape.ID
		}
	}
	for _, ps := range scenario.Plan(cells) {
		cl := ps.Shape.Cluster
		network := cl.PodNetwork
		if cl.NodeImage == "published" {
			network = "kindnet (kind's published node image)"
		}
		fmt.Fprintf(s.Out, "\ncluster %s: Kubernetes %s, %d control plane(s) + %d worker(s), pod network %s, kube-proxy %s, %s × %d",
			ps.Shape.ID, cl.Kubernetes, cl.Nodes.ControlPlanes, cl.Nodes.Workers, network, cl.KubeProxy, cl.DNS.Server, cl.DNS.Replicas)
		if len(ps.Shape.ClusterMitigations) > 0 {
			fmt.Fprintf(s.Out, ", with %s", strings.Join(ps.Shape.ClusterMitigations, ", "))
		}
		runs := 0
		for _, c := range ps.Cells {
			if c.Runs() {
				runs++
			}
		}
		switch lanes, why := scenario.Lanes(sc.CellsAtOnce, cl, runs); {
		case lanes > 1:
			fmt.Fprintf(s.Out, "; %d cells at once, on %d workers", lanes, lanes*cl.Nodes.Workers)
		case why != "":
			fmt.Fprintf(s.Out, "; one cell at a time: %s", why)
		}
		if host, ok := served[ps.Shape.ID]; ok {
			fmt.Fprintf(s.Out, "; on the cluster of %s, after its cells (set up, undone, checked)", host)
		}
		fmt.Fprintln(s.Out)
		tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CELL\tBACK END\tMITIGATION\tLOAD\tCHAOS\tSTATUS")
		for _, c := range ps.Cells {
			status := "will run"
			if !c.Runs() {
				status = "not run: " + c.NotRun
			} else if len(c.Ignored) > 0 {
				status += fmt.Sprintf(" (%s ignores %s: expected to change nothing)", c.Resolver, strings.Join(c.Ignored, ", "))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Backend, c.MitigationID(), c.LoadID, c.Chaos.ID(), status)
		}
		tw.Flush()
	}
}

// writeShards is the plan split into shards: per shard its estimate, cell
// count and shapes, a shape split over shards with the share it holds.
func writeShards(s Streams, file string, sc *scenario.Scenario, cells []scenario.Cell, shards []plan.Shard) {
	writeHeader(s, sc, cells)
	total := map[string]int{}
	notRun := 0
	for _, c := range cells {
		if c.Runs() {
			total[c.Shape.ID]++
		} else {
			notRun++
		}
	}
	fmt.Fprintf(s.Out, "%d shards (labrun run %s --shard i/%d); shard 1 also records the %d cell(s) not run\n",
		len(shards), file, len(shards), notRun)
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tESTIMATE\tCELLS\tCLUSTER SHAPES")
	for _, sh := range shards {
		n := map[string]int{}
		for _, c := range sh.Cells {
			n[c.Shape.ID]++
		}
		shapes := make([]string, len(sh.Shapes))
		for i, id := range sh.Shapes {
			shapes[i] = id
			if n[id] < total[id] {
				shapes[i] += fmt.Sprintf(" (%d of %d cells)", n[id], total[id])
			}
		}
		list := strings.Join(shapes, ", ")
		if len(shapes) == 0 {
			list = "(empty: nothing to run)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", sh, sh.Estimate.Round(time.Second), len(sh.Cells), list)
	}
	tw.Flush()
}

// runnable are the cells that run.
func runnable(cells []scenario.Cell) []scenario.Cell {
	var out []scenario.Cell
	for _, c := range cells {
		if c.Runs() {
			out = append(out, c)
		}
	}
	return out
}
