// Command labrun builds a reproducible lab on kind clusters that reproduces the
// Kubernetes "DNS lookups take 5 s" problem and compares its mitigations.
package main

import (
	"context"
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
	if err := cmd.Run(ctx, cmd.StandardStreams(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "labrun:", err)
		os.Exit(cmd.ExitCode(err))
	}
}
