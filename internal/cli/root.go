// Package cli is labrun's command line: one small file per subcommand, each
// calling only the public API of the stage packages. Results go to stdout,
// progress to stderr, and the error is printed once, by main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Streams are the command's standard streams; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// StandardStreams returns the process's stdin, stdout and stderr.
func StandardStreams() Streams { return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Run executes labrun with args (without the program name).
func Run(ctx context.Context, s Streams, args []string) error {
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	return root.ExecuteContext(ctx)
}

func newRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "labrun",
		Short:         "A lab on kind clusters for the Kubernetes 5 s DNS problem and its mitigations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	// Each subcommand lives in its own file of this package.
	for _, add := range subcommands {
		root.AddCommand(add(s))
	}
	usageArgs(root)
	return root
}

// usageArgs makes every argument error of the command tree a UsageError by
// construction (not by matching cobra's messages): a command group answers an
// unknown subcommand itself, and each command's Args validator is wrapped.
func usageArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageError{fmt.Errorf("unknown command %q for %q; `%s --help` lists them", args[0], c.CommandPath(), c.CommandPath())}
			}
			return c.Help()
		}
	}
	if v := c.Args; v != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := v(c, args); err != nil {
				var u UsageError
				if errors.As(err, &u) {
					return err
				}
				return UsageError{fmt.Errorf("%s: %w", c.CommandPath(), err)}
			}
			return nil
		}
	}
}

// subcommands is filled by each subcommand file's var block (no init()).
var subcommands = []func(Streams) *cobra.Command{
	newVersionCommand,
	newPcapCommand,
	newImagesCommand,
	newClusterCommand,
	newCleanCommand,
	newValidateCommand,
	newPlanCommand,
	newReportCommand,
	newCompareCommand,
	newExportCommand,
	newMergeCommand,
	newSiteCommand,
	newRunCommand,
	newHostcheckCommand,
	newDiagnoseCommand,
}
