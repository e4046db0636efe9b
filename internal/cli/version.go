package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/internal/version"
)

func newVersionCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print labrun's version and the Go module versions it was built with",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				return fmt.Errorf("no build information in this binary")
			}
			fmt.Fprintf(s.Out, "labrun %s (%s)\n", version.String(), bi.GoVersion)
			return nil
		},
	}
}
