package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/plan"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

func newRunCommand(s Streams) *cobra.Command {
	var (
		o        lab.RunOptions
		shard    string
		prefix   string
		parallel string
		ex       existing.Options
	)
	c := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario on kind clusters and write its results and report",
		Long: `Run a scenario: one kind cluster per cluster shape (built from the offline
images, built first if missing), reused by all its cells; per cell a namespace,
the probe pods, the race emulator when the scenario asks for it, node counters
before and after, and every lookup streamed into results/<run>/raw/. Then the
analysis and the report; the path of index.html is printed on stdout, then
each expectation of the scenario's expect: block (exit 3 when one is broken;
docs/exit-codes.md).

Progress goes to stderr. Ctrl-C stops the probes, deletes namespaces, agents and
clusters (unless --retain), keeps what was measured and builds the report;
--resume results/<run> then runs only the cells that did not complete.

--shard i/N runs only shard i of the N that labrun plan FILE --shards N shows
on a host like this one (one machine of a parallel run). The run directory is
results/<scenario>-<time>-shard-i-of-N with a shard.json naming the shard's
cells; other shards' cells get no status file, and shard 1 also records the
cells that will not run. --resume of a shard run keeps to its shard. A shard
does not judge the expect: block (its other cells are elsewhere): labrun
merge does, on the joined run.

--parallel N runs up to N cluster shapes at once, each on its own cluster
(the cells of one shape still run one after another on it); auto picks the
smallest of the shapes to run, the clusters memory holds (600 MiB a kind
node, against MemAvailable) and the CPUs. More clusters than memory holds is
refused before anything runs (exit 2); more than CPUs is a warning.

--cells-at-once N (or the scenario's cellsAtOnce) runs up to N cells of a shape
at once on one cluster, each on workers of its own: the cluster gets N times
the shape's workers (at most 8), kept for the cells, so that CoreDNS and the
lab's servers run on the control plane; each cell's probes, race emulator,
counters and captures are on its own workers only (docs/quick-start.md).

--kubeconfig K [--context C] runs the cells on that existing cluster instead
(no docker or kind call; docs/existing-cluster.md): its shape is read and
recorded in env.json, cells of a shape it does not match are not run (with the
reason), nor those that would change the cluster (cluster-level mitigations,
names of the lab upstream). Everything the lab deploys is in one namespace
labrun-<run>, deleted at the end, on failure and on Ctrl-C (labrun clean
--kubeconfig K sweeps what a killed run left). Node counters need
--allow-privileged (a privileged hostNetwork pod per probed node); without it
they are "not read". The race emulator (and delay-aaaa) drops or holds DNS
packets on the nodes: only with --allow-race-emulator too. Lab images come
from the nodes (a lab cluster preloads them) or --image-registry.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0 && o.Resume == "") {
				return UsageError{errors.New("run: want one scenario FILE (optional with --resume)")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if c.Flags().Changed("shard") {
				i, n, err := plan.ParseShard(shard)
				if err != nil {
					return UsageError{fmt.Errorf("--shard: %w", err)}
				}
				o.Shard = &results.Shard{Index: i, Count: n}
			}
			if c.Flags().Changed("parallel") {
				n, err := parseParallel(parallel)
				if err != nil {
					return UsageError{err}
				}
				o.Parallel = n
			}
			if c.Flags().Changed("cells-at-once") && (o.CellsAtOnce < 1 || o.CellsAtOnce > scenario.MaxCellsAtOnce) {
				return UsageError{fmt.Errorf("--cells-at-once %d: want 1 to %d", o.CellsAtOnce, scenario.MaxCellsAtOnce)}
			}
			if len(args) == 1 {
				o.Scenario = args[0]
			}
			if prefix != "" {
				if !clusterPrefixRE.MatchString(prefix) {
					return UsageError{fmt.Errorf("--cluster-prefix %q: want lowercase letters, digits and inner hyphens", prefix)}
				}
				o.ClusterPrefix = cluster.NamePrefix + "-" + prefix
			}
			o.Progress = s.Err
			onExisting := c.Flags().Changed("kubeconfig") || c.Flags().Changed("context")
			switch {
			case !onExisting && (ex.AllowPrivileged || ex.AllowRaceEmulator || ex.ImageRegistry != ""):
				return UsageError{errors.New("run: --allow-privileged, --allow-race-emulator and --image-registry are for an existing cluster (--kubeconfig)")}
			case ex.AllowRaceEmulator && !ex.AllowPrivileged:
				return UsageError{errors.New("run: --allow-race-emulator needs --allow-privileged (labagent is a privileged pod on each probed node)")}
			case onExisting && (o.Mirror != "" || prefix != "" || c.Flags().Changed("parallel") || c.Flags().Changed("cells-at-once")):
				return UsageError{errors.New("run: --mirror, --cluster-prefix, --parallel and --cells-at-once are for kind clusters, not an existing cluster (--kubeconfig)")}
			case onExisting:
				ex.Progress = s.Err
				p, err := existing.New(ex)
				if err != nil {
					return UsageError{err}
				}
				o.Provider = p
			}
			res, err := lab.Run(c.Context(), o)
			if errors.Is(err, lab.ErrTooParallel) || errors.Is(err, lab.ErrBadInput) {
				return UsageError{err}
			}
			if res == nil {
				return err
			}
			fmt.Fprintln(s.Out, res.Index)
			if o.Shard != nil && len(res.Expectations) > 0 {
				// A shard holds part of the cells: expectations on the
				// others cannot be evaluated here, and would exit 1.
				fmt.Fprintf(s.Out, "%d expectations: judged on the whole run, after labrun merge joins the shards\n", len(res.Expectations))
				return err
			}
			// A failed run's error comes first: ExitCode gives it precedence
			// over a broken expectation.
			return errors.Join(err, judge(s.Out, res.Expectations))
		},
	}
	c.Flags().BoolVar(&o.Retain, "retain", false, "keep the clusters afterwards, one for each shape (labrun cluster down --name NAME deletes one)")
	c.Flags().StringVar(&o.Mirror, "mirror", "", "registry mirror HOST[:PORT] (http://HOST[:PORT] for plain HTTP) to pull the published images the cells need through (overrides the scenario's images.mirror)")
	c.Flags().StringVar(&o.Resume, "resume", "", "an earlier run's directory (results/<run>): run only its cells without a complete status")
	c.Flags().StringVar(&o.ResultsDir, "results", "results", "where the run's directory is made")
	c.Flags().StringVar(&prefix, "cluster-prefix", "", "name the clusters labrun-PREFIX-<shape> instead of labrun-<shape>, apart from other runs' clusters on a shared host")
	c.Flags().StringVar(&shard, "shard", "", "run only shard i of N (i/N, 1 ≤ i ≤ N): the cells labrun plan FILE --shards N gives it")
	c.Flags().StringVar(&parallel, "parallel", "1", "run up to `N` cluster shapes at once, each on its own cluster (N ≥ 1, or auto: as many as shapes, memory and CPUs allow)")
	c.Flags().IntVar(&o.CellsAtOnce, "cells-at-once", 0, "run up to `N` cells of a shape at once, each on workers of its own (1 to 4; default: the scenario's cellsAtOnce, else 1)")
	c.Flags().StringVar(&ex.Kubeconfig, "kubeconfig", "", "run on this existing cluster instead of kind clusters (docs/existing-cluster.md)")
	c.Flags().StringVar(&ex.Context, "context", "", "with --kubeconfig: its context (default: the current one)")
	c.Flags().BoolVar(&ex.AllowPrivileged, "allow-privileged", false, "existing cluster: a privileged hostNetwork pod per probed node, for node counters and DNS captures")
	c.Flags().BoolVar(&ex.AllowRaceEmulator, "allow-race-emulator", false, "existing cluster: run the race emulator (drops DNS packets on the nodes) and delay-aaaa; needs --allow-privileged")
	c.Flags().StringVar(&ex.ImageRegistry, "image-registry", "", "existing cluster: a registry serving the lab images as REGISTRY/labrun/NAME:TAG to nodes that do not hold them")
	c.Flags().StringVar(&ex.ImageTag, "image-tag", "latest", "with --image-registry: the lab images' tag")
	return c
}

// parseParallel reads --parallel: a number of clusters ≥ 1, or auto.
func parseParallel(v string) (int, error) {
	if v == "auto" {
		return lab.ParallelAuto, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--parallel %q: want a number of clusters ≥ 1, or auto", v)
	}
	return n, nil
}

// clusterPrefixRE is what --cluster-prefix accepts: a part of a kind cluster
// name (a DNS label).
var clusterPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$`)
