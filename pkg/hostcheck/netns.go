package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// try is one attempt to use a feature inside the throwaway namespace, and
// the error texts that mean the kernel lacks it (any other failure leaves the
// feature unknown, with the error shown).
type try struct {
	feature Feature
	argv    []string // NS is replaced by the namespace's name
	lacking []string
}

// tries are run in order in the throwaway namespace; netem needs the veth
// pair made first.
var tries = []try{
	{Netem, []string{"tc", "-n", "NS", "qdisc", "add", "dev", "hc0", "root", "netem", "delay", "1ms"},
		[]string{"Specified qdisc kind is unknown", "Unknown qdisc", "qdisc kind is unknown"}},
	{IPIP, []string{"ip", "-n", "NS", "link", "add", "hcipip", "type", "ipip", "local", "192.0.2.1", "remote", "192.0.2.2"},
		[]string{"Unknown device type", "Operation not supported"}},
	{VXLAN, []string{"ip", "-n", "NS", "link", "add", "hcvx", "type", "vxlan", "id", "42", "dstport", "4789", "local", "192.0.2.1"},
		[]string{"Unknown device type", "Operation not supported"}},
	{NFQueue, []string{"ip", "netns", "exec", "NS", "iptables", "-w", "5", "-t", "mangle", "-A", "OUTPUT",
		"-p", "udp", "--dport", "53", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"},
		[]string{"No chain/target/match by that name", "Couldn't load target", "not supported", "Extension NFQUEUE"}},
}

const commandTimeout = 10 * time.Second

// tryInThrowawayNetns creates a network namespace, tries each feature in it
// and removes it, whatever happened.
func tryInThrowawayNetns(ctx context.Context) (map[Feature]live, error) {
	ns := fmt.Sprintf("labrun-hostcheck-%d", os.Getpid())
	_, _ = run(ctx, "ip", "netns", "del", ns) // left by a killed earlier probe
	if out, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return nil, fmt.Errorf("create network namespace %s: %w: %s", ns, err, out)
	}
	defer run(context.WithoutCancel(ctx), "ip", "netns", "del", ns)

	got := map[Feature]live{}
	vethOut, vethErr := run(ctx, "ip", "-n", ns, "link", "add", "hc0", "type", "veth", "peer", "name", "hc1")
	for _, t := range tries {
		if t.feature == Netem && vethErr != nil {
			got[Netem] = live{state: Unknown, seen: "no veth pair to try it on: " + vethOut}
			continue
		}
		argv := make([]string, len(t.argv))
		for i, a := range t.argv {
			argv[i] = strings.ReplaceAll(a, "NS", ns)
		}
		out, err := run(ctx, argv[0], argv[1:]...)
		got[t.feature] = classify(t, argv, out, err)
	}
	return got, ctx.Err()
}

// classify turns one try's outcome into a live finding.
func classify(t try, argv []string, out string, err error) live {
	cmd := strings.Join(argv, " ")
	if err == nil {
		return live{state: Present, seen: "`" + cmd + "` succeeded"}
	}
	var notFound *exec.Error
	if errors.As(err, &notFound) {
		return live{state: Unknown, seen: argv[0] + " is not installed: " + err.Error()}
	}
	for _, s := range t.lacking {
		if strings.Contains(out, s) {
			return live{state: Absent, seen: "`" + cmd + "`: " + firstLine(out)}
		}
	}
	return live{state: Unknown, seen: "`" + cmd + "` failed: " + firstLine(out) + " (" + err.Error() + ")"}
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
