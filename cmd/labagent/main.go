// Command labagent is labrun's in-node agent: it emulates the conntrack insert
// race of old kernels on DNS packets toward the cluster DNS VIP, or counts what
// it would drop, and can hold AAAA queries for a few milliseconds (the
// delay-AAAA mitigation). See docs/race-emulator.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/raceemu"
)

func main() {
	// SIGTERM (kubelet, docker stop) and SIGINT cancel the context: the agent
	// removes its rules and releases held packets on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "labagent:", err)
		os.Exit(1)
	}
}

const defaultMetrics = "127.0.0.1:9465"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "labagent",
		Short:         "Emulate the conntrack DNS race of old kernels, count it, or delay AAAA queries",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(stdout, stderr), newCountersCommand(stdout))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func newRunCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		vips     []string
		port     uint16
		window   time.Duration
		profile  string
		replicas int
		mode     string
		delay    time.Duration
		queue    uint16
		metrics  string
		iptables string
		seed     uint64
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Install the rules and handle queued packets until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := raceemu.ParseMode(mode)
			if err != nil {
				return err
			}
			cfg := raceemu.Config{
				Port: port, Window: window, Profile: raceemu.Profile(profile), Replicas: replicas,
				Mode: m, Delay: delay, Queue: queue, MetricsAddr: metrics, Iptables: iptables,
			}
			for _, v := range vips {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return fmt.Errorf("--vip %q: %w", v, err)
				}
				cfg.VIPs = append(cfg.VIPs, a)
			}
			if seed != 0 {
				cfg.Rand = rand.New(rand.NewPCG(seed, seed)).Float64
			}
			return raceemu.Run(cmd.Context(), cfg, stdout)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&vips, "vip", nil, "DNS service VIP(s), IPv4 or IPv6 (repeat or comma-separate)")
	f.Uint16Var(&port, "port", 53, "DNS port")
	f.DurationVar(&window, "window", time.Millisecond, "a packet within this time of an earlier one of its 5-tuple clashes")
	f.StringVar(&profile, "profile", string(raceemu.Profile50To55), "kernel profile: 5.0-5.5 (p = 1 - 1/replicas) or pre-5.0 (p = 1)")
	f.IntVar(&replicas, "replicas", 2, "DNS backends behind the VIP (profile 5.0-5.5)")
	f.StringVar(&mode, "mode", "emulate", "emulate | count-only | delay-aaaa, or a race mode joined with delay-aaaa by +")
	f.DurationVar(&delay, "delay", 5*time.Millisecond, "how long AAAA queries are held (delay-aaaa)")
	f.Uint16Var(&queue, "queue", 53, "NFQUEUE number of the race emulator (NFLOG group in count-only); delay-aaaa uses queue+1")
	f.StringVar(&metrics, "metrics-addr", defaultMetrics, `counters endpoint: host:port or unix:/path; "" for none`)
	f.StringVar(&iptables, "iptables", "auto", "iptables flavour: auto (the one holding rules), nft, legacy, iptables")
	f.Uint64Var(&seed, "seed", 0, "random seed for reproducible drops (0: random)")
	return cmd
}

func newCountersCommand(stdout io.Writer) *cobra.Command {
	var metrics string
	cmd := &cobra.Command{
		Use:   "counters",
		Short: "Print a running agent's counters as JSON",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := raceemu.FetchCounters(metrics)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		},
	}
	cmd.Flags().StringVar(&metrics, "metrics-addr", defaultMetrics, "the agent's counters endpoint")
	return cmd
}
