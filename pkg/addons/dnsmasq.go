package addons

import (
	"context"
	"errors"
)

// DnsmasqCoreDNS puts a dnsmasq cache in front of CoreDNS. Not written yet (issue 6).
func DnsmasqCoreDNS(ctx context.Context, env Env, replicas int) error {
	return errors.New("dns.server dnsmasq-coredns is not set up by the lab yet (issue 6)")
}
