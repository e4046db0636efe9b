package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/hostcheck"
)

// newHostcheckCommand is `hostcheck`: what this host's kernel offers the
// lab's axis values, probed live.
func newHostcheckCommand(s Streams) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "hostcheck",
		Short: "Probe this host's kernel for what the axes need (IPVS, netem, openvswitch, IPIP, VXLAN, NFQUEUE)",
		Long: `Probe this host's kernel for the features the lab's axis values need. As root, netem, IPIP,
VXLAN and NFQUEUE are tried in a network namespace made for the purpose and removed; /proc/config.gz
explains what is absent.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			k, err := hostcheck.Probe(c.Context())
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(s.Out)
				e.SetIndent("", "  ")
				return e.Encode(k)
			}
			return writeKernel(s.Out, k)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	return c
}

func writeKernel(w io.Writer, k hostcheck.Kernel) error {
	fmt.Fprintf(w, "kernel %s\n", k.Release)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tSTATE\tNEEDED BY\tEVIDENCE")
	for _, f := range k.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Feature, f.State, hostcheck.NeededBy[f.Feature], f.Evidence)
	}
	return tw.Flush()
}
