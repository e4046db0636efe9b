// Package cmd is labrun's command line: one small file per subcommand, each
// calling only the public API of the stage packages. Results go to stdout,
// progress to stderr, and the error is printed once, by main.
package cmd

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Streams are the command's standard streams; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// StandardStreams returns the process's stdin, stdout and stderr.
func StandardStreams() Streams { return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// UsageError is bad input from the user: exit code 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ExitCode maps an error to the process exit code: 2 for bad input, 1 otherwise.
func ExitCode(err error) int {
	var u UsageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// Run executes labrun with args (without the program name).
func Run(ctx context.Context, s Streams, args []string) error {
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	err := root.ExecuteContext(ctx)
	var u UsageError
	if err != nil && !errors.As(err, &u) && isFlagError(err) {
		return UsageError{err}
	}
	return err
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
	return root
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
	newRunCommand,
	newHostcheckCommand,
}

func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
