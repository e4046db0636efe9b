// Package iptables finds the iptables flavour a network namespace uses and
// runs its binaries: shared by the race emulator's agent (on a node) and the
// egress guard (on the host), which must both add rules where the rules of
// others (kube-proxy, Docker) already are.
package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs a command and returns its standard output; errors carry stderr.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs commands on the local machine.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Backend is the iptables flavour in use: the binaries for IPv4 and IPv6.
type Backend struct {
	Name     string // "nft", "legacy" or "" (the unsuffixed binaries)
	IPv4     string
	IPv6     string
	IPv4Save string
}

// NewBackend is the flavour name ("nft", "legacy", or "" for the unsuffixed
// binaries).
func NewBackend(name string) Backend {
	if name == "" {
		return Backend{IPv4: "iptables", IPv6: "ip6tables", IPv4Save: "iptables-save"}
	}
	return Backend{Name: name, IPv4: "iptables-" + name, IPv6: "ip6tables-" + name, IPv4Save: "iptables-" + name + "-save"}
}

// DetectBackend picks the iptables flavour whose ruleset already holds rules
// (kube-proxy's, the CNI's), the way Kubernetes' iptables-wrapper does: on a
// node where kube-proxy uses legacy iptables, rules added with iptables-nft
// would still work but be invisible to its tools. A tie (an empty netns) goes
// to whatever the unsuffixed iptables is.
func DetectBackend(ctx context.Context, run Runner, lookPath func(string) (string, error)) (Backend, error) {
	counts := map[string]int{}
	for _, name := range []string{"nft", "legacy"} {
		b := NewBackend(name)
		if _, err := lookPath(b.IPv4Save); err != nil {
			continue
		}
		out, err := run(ctx, b.IPv4Save)
		if err != nil {
			continue // e.g. legacy tables absent from the kernel
		}
		counts[name] = countRules(out)
	}
	switch {
	case len(counts) == 0:
		if _, err := lookPath("iptables"); err != nil {
			return Backend{}, fmt.Errorf("no iptables binary found (need iptables-nft, iptables-legacy or iptables in PATH)")
		}
		return NewBackend(""), nil
	case len(counts) == 1:
		for name := range counts {
			return NewBackend(name), nil
		}
	}
	if counts["legacy"] > counts["nft"] {
		return NewBackend("legacy"), nil
	}
	if counts["nft"] > counts["legacy"] {
		return NewBackend("nft"), nil
	}
	if out, err := run(ctx, "iptables", "--version"); err == nil && strings.Contains(string(out), "legacy") {
		return NewBackend("legacy"), nil
	}
	return NewBackend("nft"), nil
}

// countRules counts "-A" lines in iptables-save output.
func countRules(save []byte) int {
	n := 0
	for line := range strings.Lines(string(save)) {
		if strings.HasPrefix(line, "-A ") {
			n++
		}
	}
	return n
}
