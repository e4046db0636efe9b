// Command labrun builds a reproducible lab on kind clusters that reproduces the
// Kubernetes "DNS lookups take 5 s" problem and compares its mitigations.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"labrun.dev/labrun/internal/cli"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context: every stage cleans up on its way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, cli.StandardStreams(), os.Args[1:])
	code := cli.ExitCode(ctx, err)
	switch code {
	case cli.ExitOK:
	case cli.ExitInterrupted:
		if err == nil {
			// The signal came as the command finished (a run's report).
			fmt.Fprintln(os.Stderr, "labrun: interrupted as it finished; its work is complete")
			break
		}
		fmt.Fprintln(os.Stderr, "labrun: interrupted; what it had made is removed:", err)
	default:
		fmt.Fprintln(os.Stderr, "labrun:", err)
	}
	os.Exit(code)
}
