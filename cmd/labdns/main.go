// Command labdns is the lab's upstream DNS server: authoritative for a
// synthetic outside zone, NXDOMAIN for every other name (package
// labrun.dev/labrun/pkg/upstream). It serves UDP and TCP until SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"labrun.dev/labrun/pkg/upstream"
)

func main() {
	cfg := upstream.Defaults()
	listen := flag.String("listen", ":53", "address to serve UDP and TCP on")
	flag.StringVar(&cfg.Zone, "zone", cfg.Zone, "the synthetic outside zone; every name in it exists")
	a := flag.String("a", cfg.A.String(), "the A record of every name in the zone")
	aaaa := flag.String("aaaa", cfg.AAAA.String(), "the AAAA record of every name in the zone")
	ttl := flag.Uint("ttl", uint(cfg.TTL), "TTL of answers and negative answers, seconds")
	flag.DurationVar(&cfg.Latency, "latency", cfg.Latency, "delay added before every answer")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	cfg.A, cfg.AAAA, cfg.TTL = net.ParseIP(*a), net.ParseIP(*aaaa), uint32(*ttl)
	if _, err := upstream.NewHandler(cfg); err != nil {
		fail(2, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "labdns: serving %s on %s (udp, tcp), latency %v\n", cfg.Zone, *listen, cfg.Latency)
	if err := upstream.ListenAndServe(ctx, cfg, *listen); err != nil {
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "labdns: %v\n", err)
	os.Exit(code)
}
