// Command probe resolves names in a loop through one resolver back end and
// writes one JSON line per lookup, then a summary line (package
// labrun.dev/labrun/pkg/probe documents the back ends, the flags and how the
// glibc and musl binaries are built).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"labrun.dev/labrun/pkg/probe"
	"labrun.dev/labrun/pkg/sample"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var u usageError
	switch {
	case err == nil:
	case errors.As(err, &u):
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(1)
	}
}

// usageError is bad input: exit code 2, and nothing was written to stdout.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := probe.Defaults()
	if err := probe.FromEnv(&cfg, getenv); err != nil {
		return usageError{err}
	}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: probe [flags]\n\nback ends: %s (this binary's libc: %s)\n\n", strings.Join(probe.Backends, ", "), libcOrNone())
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "resolver back end (env "+probe.EnvBackend+")")
	fs.Func("names", "comma-separated [short|fqdn|external:]NAME list, looked up round robin (env "+probe.EnvNames+")", func(v string) error {
		names, err := probe.ParseNames(v)
		cfg.Names = names
		return err
	})
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "lookups per second over all workers, 0 for as fast as possible (env "+probe.EnvRate+")")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "lookups in flight at once (env "+probe.EnvConcurrency+")")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to issue lookups, 0 for no limit (env "+probe.EnvDuration+")")
	fs.Uint64Var(&cfg.Count, "count", cfg.Count, "stop after this many lookups, 0 for no limit (env "+probe.EnvCount+")")
	fs.StringVar(&cfg.ResolvConf, "resolv-conf", cfg.ResolvConf, "resolv.conf to check (and, for raw, to read)")
	fs.StringVar(&cfg.Cell, "cell", cfg.Cell, "cell id written in each sample (env "+probe.EnvCell+")")
	fs.StringVar(&cfg.Mitigation, "mitigation", cfg.Mitigation, "mitigation written in each sample (env "+probe.EnvMitigation+")")
	fs.StringVar(&cfg.Pod, "pod", cfg.Pod, "pod name written in each sample (env "+probe.EnvPod+")")
	fs.StringVar(&cfg.Node, "node", cfg.Node, "node name written in each sample (env "+probe.EnvNode+")")
	fs.StringVar(&cfg.RawPolicy, "raw-socket", cfg.RawPolicy, "raw: "+probe.SameSocket+" or "+probe.SocketPerQuery+" (env "+probe.EnvRawPolicy+")")
	fs.BoolVar(&cfg.KeepResolverState, "keep-resolver-state", cfg.KeepResolverState, "glibc/musl: keep the libc's per-thread resolver state between lookups instead of rereading resolv.conf before each (env "+probe.EnvKeepState+")")
	fs.IntVar(&cfg.GRPCPort, "grpc-port", cfg.GRPCPort, "grpc-*: port of the dns:///NAME:PORT target (env "+probe.EnvGRPCPort+")")
	fs.DurationVar(&cfg.GRPCDeadline, "grpc-deadline", cfg.GRPCDeadline, "grpc-*: RPC deadline; DEADLINE_EXCEEDED counts as a timeout")
	fs.StringVar(&cfg.Python, "python", cfg.Python, "grpc-*: python3 with grpcio")
	fs.StringVar(&cfg.Java, "java", cfg.Java, "jvm: the java launcher")
	fs.StringVar(&cfg.JVMClassPath, "jvm-classpath", cfg.JVMClassPath, "jvm: directory holding LabProbe.class")
	fs.StringVar(&cfg.JVMCache, "jvm-cache", cfg.JVMCache, "jvm: defaults (networkaddress.cache.ttl 30 s) or nocache (ttl=0, negative.ttl=0)")
	serveGRPC := fs.String("serve-grpc", "", "instead of probing, run the lab's gRPC server on this address (e.g. [::]:50051)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q (names go in --names)", fs.Args())}
	}
	if *serveGRPC != "" {
		return serveGRPCUntil(ctx, cfg.Python, *serveGRPC, stderr)
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	r, err := probe.New(cfg)
	if err != nil {
		return usageError{err}
	}
	defer r.Close()
	sum, err := probe.Run(ctx, cfg, r, sample.NewEncoder(stdout))
	if err != nil {
		return err
	}
	if !sum.Complete {
		fmt.Fprintf(stderr, "probe: interrupted after %d lookups (summary written, complete=false)\n", sum.Lookups)
	}
	return nil
}

func libcOrNone() string {
	if l := probe.Libc(); l != "" {
		return l
	}
	return "none"
}

// serveGRPCUntil runs the lab's gRPC server until ctx ends (SIGTERM).
func serveGRPCUntil(ctx context.Context, python, addr string, stderr io.Writer) error {
	argv := probe.GRPCServerArgv(python, addr)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if err := probe.StartGRPCServer(cmd); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "probe: gRPC server listening on %s\n", addr)
	err := cmd.Wait()
	if ctx.Err() != nil {
		return nil // stopped by a signal, as intended
	}
	return fmt.Errorf("gRPC server exited: %w", err)
}
