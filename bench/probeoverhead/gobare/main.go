// Command gobare is the Go bare loop of the probe's glibc back end: the same
// Lookup the probe makes, timed the same way, with no pacing and no output
// until the end. Usage: gobare NAME COUNT; prints "start_ns took_us" lines.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"labrun.dev/labrun/pkg/probe"
	"labrun.dev/labrun/pkg/sample"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gobare NAME COUNT")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg := probe.Defaults()
	cfg.Backend = probe.Glibc
	r, err := probe.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	starts, took := make([]time.Time, n), make([]time.Duration, n)
	ctx := context.Background()
	for i := range n {
		starts[i] = time.Now()
		out := r.Lookup(ctx, os.Args[1])
		took[i] = time.Since(starts[i])
		if out.Result != sample.OK {
			fmt.Fprintf(os.Stderr, "lookup %d: %s %s\n", i, out.Result, out.Err)
			os.Exit(1)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range n {
		fmt.Fprintf(w, "%d %d\n", starts[i].UnixNano(), took[i].Microseconds())
	}
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}
