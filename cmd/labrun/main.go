// Command labrun builds a reproducible lab on kind clusters that reproduces the
// Kubernetes "DNS lookups take 5 s" problem and compares its mitigations.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"labrun.dev/labrun/pkg/cmd"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context: every stage cleans up on its way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.Run(ctx, cmd.StandardStreams(), os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "labrun: interrupted; what it had made is removed")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "labrun:", err)
		os.Exit(cmd.ExitCode(err))
	}
}
