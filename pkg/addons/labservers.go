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
// applied first; then their pods start, CoreDNS restarts with the upstream's
// address (its new pods forward there from their first query) and, once the
// upstream is ready, the nodes' rules point at its pod: all side by side.
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
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return grpc.wait(gctx, cs) })
	g.Go(func() error { return forwardCoreDNS(gctx, cs, addrs.Upstream) })
	g.Go(func() error {
		if err := upstream.wait(gctx, cs); err != nil {
			return err
		}
		return HermeticNodeResolver(gctx, env)
	})
	return addrs, g.Wait()
}
