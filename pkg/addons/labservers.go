package addons

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// LabAddresses are the Service IPs of the lab's own servers.
type LabAddresses struct {
	// GRPC is the lab gRPC server's (gRPC probes call it, by GRPCTarget
	// and by every name of Zone).
	GRPC string
	// Upstream is the lab upstream DNS server's (CoreDNS forwards to it).
	Upstream string
}

// LabServers makes a fresh cluster hermetic and gives gRPC probes a server:
// the lab gRPC server (probeImage: the probe-glibc image, `probe
// --serve-grpc`) and the lab upstream DNS server (upstreamImage: the labdns
// image), which answers every name of Zone with the gRPC server's Service IP
// and to which CoreDNS forwards instead of the node's resolv.conf, so no
// lookup leaves the lab; pods with dnsPolicy Default are kept inside too
// (HermeticNodeResolver). Both images are preloaded in the node image.
//
// A Service's cluster IP is known once it is created, so both servers are
// applied first and their pods start side by side; CoreDNS's rewrite and the
// nodes' rules, which need the upstream ready, also run side by side.
func LabServers(ctx context.Context, env Env, probeImage, upstreamImage string) (LabAddresses, error) {
	cs := env.Cluster.Client
	grpc := grpcServer(probeImage)
	var addrs LabAddresses
	var err error
	if addrs.GRPC, err = grpc.apply(ctx, cs); err != nil {
		return addrs, fmt.Errorf("lab gRPC server: %w", err)
	}
	upstream := labUpstream(upstreamImage, addrs.GRPC)
	if addrs.Upstream, err = upstream.apply(ctx, cs); err != nil {
		return addrs, fmt.Errorf("lab upstream: %w", err)
	}
	ready, rctx := errgroup.WithContext(ctx)
	for _, s := range []labService{grpc, upstream} {
		ready.Go(func() error { return s.wait(rctx, cs) })
	}
	if err := ready.Wait(); err != nil {
		return addrs, fmt.Errorf("lab servers: %w", err)
	}
	rewire, wctx := errgroup.WithContext(ctx)
	rewire.Go(func() error { return forwardCoreDNS(wctx, cs, addrs.Upstream) })
	rewire.Go(func() error { return HermeticNodeResolver(wctx, env) })
	return addrs, rewire.Wait()
}
