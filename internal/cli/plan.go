package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/scenario"
)

func newPlanCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "plan FILE",
		Short: "List a scenario's cells by cluster shape: will run, or not run and why; estimated wall time",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sc, err := scenario.LoadFile(args[0])
			if err != nil {
				return UsageError{err}
			}
			writePlan(s, sc, lab.PlanCells(c.Context(), sc))
			return nil
		},
	}
}

func writePlan(s Streams, sc *scenario.Scenario, cells []scenario.Cell) {
	shapes := scenario.Plan(cells)
	runs := 0
	for _, c := range cells {
		if c.Runs() {
			runs++
		}
	}
	fmt.Fprintf(s.Out, "scenario %s: %d cells on %d cluster shape(s); %d will run, %d not run; estimated wall time %s\n",
		sc.Metadata.Name, len(cells), len(shapes), runs, len(cells)-runs, scenario.EstimateWallTime(cells).Round(time.Second))
	for _, ps := range shapes {
		cl := ps.Shape.Cluster
		fmt.Fprintf(s.Out, "\ncluster %s: Kubernetes %s, %d control plane(s) + %d worker(s), pod network %s, kube-proxy %s, %s × %d",
			ps.Shape.ID, cl.Kubernetes, cl.Nodes.ControlPlanes, cl.Nodes.Workers, cl.PodNetwork, cl.KubeProxy, cl.DNS.Server, cl.DNS.Replicas)
		if len(ps.Shape.ClusterMitigations) > 0 {
			fmt.Fprintf(s.Out, ", with %s", strings.Join(ps.Shape.ClusterMitigations, ", "))
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
