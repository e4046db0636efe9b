package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/lab"
)

func newClusterCommand(s Streams) *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "Bring a lab kind cluster up or down"}
	var o lab.UpOptions
	up := &cobra.Command{
		Use:   "up",
		Short: "Create a kind cluster from the locally built images and wait until it is ready",
		Long: `Create a kind cluster (default: 1 control-plane + 2 workers, kube-proxy iptables,
CoreDNS x 2 forwarding to the lab upstream DNS server) from the images of
'labrun images build' (built first if missing), and wait until every node and
CoreDNS is Ready. Ctrl-C deletes the half-made cluster. Prints the kubeconfig path.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.Progress = s.Err
			l, err := lab.Up(c.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.Out, l.Cluster.Kubeconfig)
			return nil
		},
	}
	up.Flags().StringVar(&o.Scenario, "config", "", "a scenario file whose cluster shape to use (default: the default shape)")
	up.Flags().StringVar(&o.Shape, "shape", "", "which cluster shape of --config (default: the first)")
	up.Flags().StringVar(&o.Name, "name", cluster.NamePrefix, "cluster name; must start with "+cluster.NamePrefix)
	up.Flags().StringVar(&o.Kubernetes, "kubernetes", "", "Kubernetes version (default: the scenario's, else images/versions.yaml's first)")
	up.Flags().BoolVar(&o.Retain, "retain", false, "keep the cluster if its setup fails")

	var name string
	down := &cobra.Command{
		Use:   "down",
		Short: "Delete a lab cluster",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return kind.New(s.Err).Delete(c.Context(), name)
		},
	}
	down.Flags().StringVar(&name, "name", cluster.NamePrefix, "cluster name")
	c.AddCommand(up, down)
	return c
}

func newCleanCommand(s Streams) *cobra.Command {
	var prefix, kubeconfig, kubeContext string
	c := &cobra.Command{
		Use:   "clean",
		Short: "Delete every cluster, container and network the lab made (found by name and label)",
		Long: `Delete every cluster, container and network the lab made, found by name and
label with no state file (a run killed with SIGKILL left them): lab clusters,
image build containers, the egress guard, kind's Docker network once no kind
cluster uses it, and the host sysctls kubelet changed are restored.

--cluster-prefix NAME deletes only the clusters of runs started with the same
--cluster-prefix (labrun-NAME-…); the egress guard and kind's network go only
when no other lab cluster is left.

--kubeconfig K [--context C] cleans an existing cluster instead (no docker or
kind call): every namespace labrun run --kubeconfig made there (labelled
labrun.dev/existing=true) is deleted, then a final check says that nothing
labelled so is left.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("kubeconfig") || c.Flags().Changed("context") {
				if prefix != "" {
					return UsageError{fmt.Errorf("--cluster-prefix names kind clusters; --kubeconfig cleans an existing cluster: give one of them")}
				}
				p, err := existing.New(existing.Options{Kubeconfig: kubeconfig, Context: kubeContext, Progress: s.Err})
				if err != nil {
					return UsageError{err}
				}
				return existing.Sweep(c.Context(), p.Client(), s.Err)
			}
			full := ""
			if prefix != "" {
				if !clusterPrefixRE.MatchString(prefix) {
					return UsageError{fmt.Errorf("--cluster-prefix %q: want lowercase letters, digits and inner hyphens", prefix)}
				}
				full = cluster.NamePrefix + "-" + prefix
			}
			return lab.Clean(c.Context(), kind.New(s.Err), full, s.Err)
		},
	}
	c.Flags().StringVar(&prefix, "cluster-prefix", "", "only the clusters of runs started with this --cluster-prefix")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "clean an existing cluster (what labrun run --kubeconfig left there) instead of kind clusters")
	c.Flags().StringVar(&kubeContext, "context", "", "with --kubeconfig: its context (default: the current one)")
	return c
}
