//go:build e2e

package faults

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/egress"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/images"
)

// host is what a run may change on this machine, as the faults test reads
// it: the same before a run and after it, however the run ended.
type host struct {
	nodes      []string          // node containers of this test's clusters
	builds     []string          // image build containers
	network    bool              // kind's Docker network
	netns      []string          // named network namespaces
	guard      []string          // firewall rules of the lab (egress guard)
	qdiscs     string            // every qdisc on the host's interfaces
	sysctls    map[string]string // the host sysctls kubelet writes
	otherLab   []string          // lab clusters of others (another suite, a person): their guard stays
	otherKind  bool              // kind containers of others: kind's network stays
	kubeconfig []string          // kubeconfigs the lab keeps for this test's clusters
}

func readHost(ctx context.Context, t *testing.T, prefix string) host {
	t.Helper()
	var h host
	out := func(name string, args ...string) string {
		b, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			if _, missing := exec.LookPath(name); missing != nil {
				return ""
			}
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return string(b)
	}
	for _, line := range strings.Fields(out("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster", "--format", "{{.Names}}")) {
		if strings.HasPrefix(line, prefix+"-") {
			h.nodes = append(h.nodes, line)
		} else {
			h.otherKind = true
		}
	}
	h.builds = strings.Fields(out("docker", "ps", "-a", "--filter", "name=^"+images.BuildContainerPrefix, "--format", "{{.Names}}"))
	h.network = slices.Contains(strings.Fields(out("docker", "network", "ls", "--format", "{{.Name}}")), egress.Network)
	for _, l := range strings.Split(out("ip", "netns", "list"), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			h.netns = append(h.netns, f[0])
		}
	}
	for _, save := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		for _, l := range strings.Split(out(save), "\n") {
			if strings.Contains(l, egress.Comment) {
				h.guard = append(h.guard, save+": "+l)
			}
		}
	}
	if strings.Contains(out("nft", "list", "tables"), "labrun") {
		h.guard = append(h.guard, "nft: a labrun table")
	}
	h.qdiscs = out("tc", "qdisc", "show")
	h.sysctls = map[string]string{}
	for _, k := range cluster.HostSysctlKeys() {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			h.sysctls[k] = strings.TrimSpace(string(b))
		}
	}
	names, err := kind.New(io.Discard).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, prefix+"-") {
			h.otherLab = append(h.otherLab, n)
		}
	}
	h.kubeconfig, _ = filepath.Glob(cluster.KubeconfigPath(prefix + "-*"))
	return h
}

// leftBehind compares the host after a run with the host before it and
// says what the run left (nothing, it must). What other clusters on the
// machine keep (the guard, kind's network) is not the run's.
func leftBehind(before, after host) []string {
	var left []string
	if len(after.nodes) > 0 {
		left = append(left, "node containers: "+strings.Join(after.nodes, ", "))
	}
	if len(after.builds) > len(before.builds) {
		left = append(left, "image build containers: "+strings.Join(after.builds, ", "))
	}
	if after.network && !before.network && !after.otherKind {
		left = append(left, "kind's Docker network "+egress.Network)
	}
	for _, ns := range after.netns {
		if !slices.Contains(before.netns, ns) {
			left = append(left, "network namespace "+ns)
		}
	}
	if len(after.guard) > 0 && len(after.otherLab) == 0 {
		left = append(left, "egress guard rules: "+strings.Join(after.guard, " | "))
	}
	if after.qdiscs != before.qdiscs {
		left = append(left, "qdiscs changed:\n"+before.qdiscs+"→\n"+after.qdiscs)
	}
	if len(after.otherLab) == 0 {
		for k, v := range before.sysctls {
			if after.sysctls[k] != v {
				left = append(left, "sysctl "+k+" = "+after.sysctls[k]+", was "+v)
			}
		}
	}
	if len(after.kubeconfig) > 0 {
		left = append(left, "kubeconfigs: "+strings.Join(after.kubeconfig, ", "))
	}
	return left
}

// checkNothingLeft fails the test for everything the run left on the host.
func checkNothingLeft(ctx context.Context, t *testing.T, prefix string, before host) {
	t.Helper()
	after := readHost(ctx, t, prefix)
	for _, l := range leftBehind(before, after) {
		t.Errorf("left behind: %s", l)
	}
	if len(after.otherLab) > 0 {
		t.Logf("other lab clusters on this machine (%s): their egress guard and the host sysctls are theirs, not checked", strings.Join(after.otherLab, ", "))
	}
}
