package raceemu

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/iptables"
)

// RuleComment marks every rule the agent installs, so a later start can find
// and remove the rules of an agent that died without cleaning up.
const RuleComment = "labrun-agent"

// chainName is the agent's own chain, in mangle (race) and raw (delay).
const chainName = "LABRUN-AGENT"

// Rules describes what the agent installs.
type Rules struct {
	VIPs []netip.Addr
	Port uint16
	// RaceQueue, if set, queues UDP packets toward a VIP that open a
	// connection (conntrack state NEW) from mangle, which sees the VIP before
	// the nat table's DNAT.
	RaceQueue *uint16
	// RaceLog makes the race rule copy packets to NFLOG group *RaceQueue
	// instead of queueing them: a passive observer (count-only) that holds no
	// packet and so cannot change what conntrack does.
	RaceLog bool
	// DelayQueue, if set, queues every UDP packet toward a VIP from raw,
	// before conntrack: a packet held there has no conntrack entry yet, so
	// the entry of the query sent before it is confirmed first, as with a
	// netem delay on the way in.
	DelayQueue *uint16
}

// Command is one iptables invocation.
type Command struct {
	Bin  string
	Args []string
}

func (c Command) String() string { return c.Bin + " " + strings.Join(c.Args, " ") }

// InstallCommands returns the commands that install the rules, in order:
// chains and their rules first, then the jumps into them.
func (r Rules) InstallCommands(b iptables.Backend) []Command {
	var cmds []Command
	for _, fam := range r.families(b) {
		for _, tq := range r.tables() {
			c := func(args ...string) {
				cmds = append(cmds, Command{fam.bin, append([]string{"-w", "-t", tq.table}, args...)})
			}
			c("-N", chainName)
			for _, vip := range fam.vips {
				args := []string{"-A", chainName, "-d", vip.String(), "-p", "udp", "--dport", strconv.Itoa(int(r.Port))}
				if tq.table == "mangle" {
					args = append(args, "-m", "conntrack", "--ctstate", "NEW")
				}
				args = append(args, "-m", "comment", "--comment", RuleComment)
				if tq.table == "mangle" && r.RaceLog {
					args = append(args, "-j", "NFLOG", "--nflog-group", strconv.Itoa(int(tq.queue)), "--nflog-size", "512")
				} else {
					args = append(args, "-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(tq.queue)), "--queue-bypass")
				}
				c(args...)
			}
			// Pods' packets arrive from their veths in PREROUTING; the host's own in
			// OUTPUT. Loopback is skipped in PREROUTING: a local packet was already
			// seen in OUTPUT, and seeing it twice would look like a clash.
			c("-I", "PREROUTING", "1", "!", "-i", "lo", "-m", "comment", "--comment", RuleComment, "-j", chainName)
			c("-I", "OUTPUT", "1", "-m", "comment", "--comment", RuleComment, "-j", chainName)
		}
	}
	return cmds
}

type family struct {
	bin  string
	vips []netip.Addr
}

func (r Rules) families(b iptables.Backend) []family {
	var v4, v6 []netip.Addr
	for _, a := range r.VIPs {
		if a.Unmap().Is4() {
			v4 = append(v4, a.Unmap())
		} else {
			v6 = append(v6, a)
		}
	}
	var fams []family
	if len(v4) > 0 {
		fams = append(fams, family{b.IPv4, v4})
	}
	if len(v6) > 0 {
		fams = append(fams, family{b.IPv6, v6})
	}
	return fams
}

type tableQueue struct {
	table string
	queue uint16
}

func (r Rules) tables() []tableQueue {
	var t []tableQueue
	if r.DelayQueue != nil {
		t = append(t, tableQueue{"raw", *r.DelayQueue})
	}
	if r.RaceQueue != nil {
		t = append(t, tableQueue{"mangle", *r.RaceQueue})
	}
	return t
}

// ownTables are the tables the agent may have touched.
var ownTables = []string{"raw", "mangle"}

// RemoveCommands returns the commands that remove every rule of the agent's
// from an iptables -S listing of one table (whichever agent put them there):
// the jumps first, then the chain.
func RemoveCommands(bin, table string, listing []byte) []Command {
	var cmds []Command
	hasChain := false
	for line := range strings.Lines(string(listing)) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "-N" && f[1] == chainName {
			hasChain = true
		}
		if len(f) < 2 || f[0] != "-A" || f[1] == chainName || !isOurs(f) {
			continue
		}
		cmds = append(cmds, Command{bin, append([]string{"-w", "-t", table, "-D"}, f[1:]...)})
	}
	if hasChain {
		cmds = append(cmds,
			Command{bin, []string{"-w", "-t", table, "-F", chainName}},
			Command{bin, []string{"-w", "-t", table, "-X", chainName}})
	}
	return cmds
}

// isOurs reports whether a rule carries the agent's comment or jumps to its chain.
func isOurs(fields []string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if (fields[i] == "--comment" && strings.Trim(fields[i+1], `"`) == RuleComment) ||
			(fields[i] == "-j" && fields[i+1] == chainName) {
			return true
		}
	}
	return false
}

// Firewall applies rules with one backend.
type Firewall struct {
	Run     iptables.Runner
	Backend iptables.Backend
}

// RemoveAll removes every rule and chain of the agent's, IPv4 and IPv6, and
// returns how many commands it ran.
func (f Firewall) RemoveAll(ctx context.Context) (int, error) {
	n := 0
	for _, bin := range []string{f.Backend.IPv4, f.Backend.IPv6} {
		for _, table := range ownTables {
			out, err := f.Run(ctx, bin, "-w", "-t", table, "-S")
			if err != nil {
				if bin == f.Backend.IPv6 {
					continue // no IPv6 tables (or no ip6tables binary): nothing of ours there
				}
				return n, fmt.Errorf("list %s table: %w", table, err)
			}
			for _, c := range RemoveCommands(bin, table, out) {
				if _, err := f.Run(ctx, c.Bin, c.Args...); err != nil {
					return n, fmt.Errorf("remove rule: %w", err)
				}
				n++
			}
		}
	}
	return n, nil
}

// Install runs the install commands; on failure it removes what it added.
func (f Firewall) Install(ctx context.Context, r Rules) error {
	for _, c := range r.InstallCommands(f.Backend) {
		if _, err := f.Run(ctx, c.Bin, c.Args...); err != nil {
			if _, rerr := f.RemoveAll(context.WithoutCancel(ctx)); rerr != nil {
				return fmt.Errorf("install rules: %w (and removing them: %v)", err, rerr)
			}
			return fmt.Errorf("install rules: %w", err)
		}
	}
	return nil
}
