package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State is what a cluster's shape left on it, part by part, normalised so
// that two readings of the same shape are equal: CoreDNS's Corefile, the
// kube-system Services, DaemonSets and Deployments (their containers), each
// node's iptables rules (both flavours) and the host-wide
// sysctls the lab records. A cluster that served one shape is fit for the
// next only when a reset brought its State back to the plain cluster's.
type State map[string]string

// stateSettle bounds the wait for kube-system's workloads to be rolled out
// and ready before their state is read: a state is read of a settled
// cluster only.
const stateSettle = time.Minute

// ReadState reads a cluster's State, once every kube-system DaemonSet and
// Deployment is rolled out and ready.
func ReadState(ctx context.Context, c *Cluster) (State, error) {
	s := State{}
	cs := c.Client
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("state of %s: coredns configmap: %w", c.Name, err)
	}
	s["coredns Corefile"] = cm.Data["Corefile"]
	svcs, err := cs.CoreV1().Services("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("state of %s: kube-system services: %w", c.Name, err)
	}
	var lines []string
	for _, v := range svcs.Items {
		ports, _ := json.Marshal(v.Spec.Ports)
		lines = append(lines, fmt.Sprintf("service %s %s %s", v.Name, v.Spec.ClusterIP, ports))
	}
	dss, err := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("state of %s: kube-system daemon sets: %w", c.Name, err)
	}
	for _, d := range dss.Items {
		if err := WaitDaemonSet(ctx, cs, "kube-system", d.Name, 0, stateSettle); err != nil {
			return nil, fmt.Errorf("state of %s: %w", c.Name, err)
		}
		spec, _ := json.Marshal(d.Spec.Template.Spec.Containers)
		lines = append(lines, fmt.Sprintf("daemonset %s %s", d.Name, spec))
	}
	deps, err := cs.AppsV1().Deployments("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("state of %s: kube-system deployments: %w", c.Name, err)
	}
	for _, d := range deps.Items {
		if err := WaitDeployment(ctx, cs, "kube-system", d.Name, stateSettle); err != nil {
			return nil, fmt.Errorf("state of %s: %w", c.Name, err)
		}
		spec, _ := json.Marshal(d.Spec.Template.Spec.Containers)
		lines = append(lines, fmt.Sprintf("deployment %s %s", d.Name, spec))
	}
	slices.Sort(lines)
	s["kube-system"] = strings.Join(lines, "\n")
	var mu sync.Mutex
	err = EachNode(c.Nodes, func(n Node) error {
		out, err := c.Exec(ctx, n.Name, "sh", "-c", rulesScript)
		if err != nil {
			return fmt.Errorf("state of %s: rules of node %s: %w", c.Name, n.Name, err)
		}
		rules := NormalizeRules(string(out))
		mu.Lock()
		s["rules of "+n.Name] = rules
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	var host []string
	for _, k := range hostSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			continue // not on this kernel: absent before and after alike
		}
		host = append(host, k+" = "+strings.TrimSpace(string(b)))
	}
	s["host sysctls"] = strings.Join(host, "\n")
	return s, nil
}

// rulesScript prints a node's iptables rules, both flavours, each under a
// header of its own.
const rulesScript = `echo "== iptables-nft"; iptables-nft-save 2>/dev/null; echo "== iptables-legacy"; iptables-legacy-save 2>/dev/null; true`

var (
	chainCounters = regexp.MustCompile(`^(:\S+ \S+) \[[0-9]+:[0-9]+\]$`)
	// kubeChain names kube-proxy's and kubelet's chains: they follow the
	// Services and their endpoints (State's kube-system part), which a
	// CoreDNS restart renews and kube-proxy rewrites in its own time.
	kubeChain = regexp.MustCompile(`^KUBE-(SERVICES|SVC-|SEP-|EXT-|FW-|XLB-|SVL-|NODEPORTS|NODE-PORT|POSTROUTING|MARK-|FORWARD|PROXY-|KUBELET-|FIREWALL|EXTERNAL-SERVICES|IPTABLES-HINT|LOAD-BALANCER)`)
	// kubeJump is a rule's jump to one of them.
	kubeJump = regexp.MustCompile(` -j (KUBE-\S+)`)
)

// builtinChains are iptables' own chains: a table with nothing but these,
// empty and accepting, is no table (one made by a rule since removed).
var builtinChains = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// NormalizeRules makes iptables-save output comparable across a reset:
// without its comment lines (dates), counters, tables that hold no rule,
// and kube-proxy's and kubelet's chains and the jumps to them (kubeChain).
// Chains are sorted by name, each keeping the order of its rules. Everything
// else, the lab's own rules above all, stays as it was.
func NormalizeRules(save string) string {
	var out []string
	var chains []string           // the table's chain declarations
	var rules map[string][]string // its rules by chain, in order
	inTable, hasRules := false, false
	for _, l := range strings.Split(save, "\n") {
		l = chainCounters.ReplaceAllString(l, "$1")
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "*"):
			out = append(out, l)
			inTable, hasRules, chains, rules = true, false, nil, map[string][]string{}
		case l == "COMMIT":
			if !hasRules {
				out = out[:len(out)-1] // the table's header: no table
			} else {
				slices.Sort(chains)
				out = append(out, chains...)
				for _, name := range slices.Sorted(maps.Keys(rules)) {
					out = append(out, rules[name]...)
				}
				out = append(out, l)
			}
			inTable = false
		case !inTable:
			out = append(out, l) // a flavour's header
		case strings.HasPrefix(l, ":"):
			name, policy, _ := strings.Cut(l[1:], " ")
			if kubeChain.MatchString(name) {
				continue
			}
			chains = append(chains, l)
			if !slices.Contains(builtinChains, name) || policy != "ACCEPT" {
				hasRules = true
			}
		case strings.HasPrefix(l, "-A "):
			name, _, _ := strings.Cut(l[3:], " ")
			if m := kubeJump.FindStringSubmatch(l); kubeChain.MatchString(name) || m != nil && kubeChain.MatchString(m[1]) {
				continue
			}
			rules[name] = append(rules[name], l)
			hasRules = true
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Diff names the parts of s that differ from want, each with how many of
// its lines are new and how many gone, and the first of each (a rule, the
// "-A" line, first); nil when they are equal.
func (s State) Diff(want State) []string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range s {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if s[k] == want[k] {
			continue
		}
		var parts []string
		for _, d := range []struct {
			what     string
			from, to string
		}{{"new", want[k], s[k]}, {"gone", s[k], want[k]}} {
			if only := linesNotIn(d.to, d.from); len(only) > 0 {
				first := only[0]
				if i := slices.IndexFunc(only, func(l string) bool { return strings.HasPrefix(l, "-A ") }); i >= 0 {
					first = only[i]
				}
				parts = append(parts, fmt.Sprintf("%d line(s) %s, %q", len(only), d.what, first))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "the same lines in another order")
		}
		out = append(out, k+": "+strings.Join(parts, "; "))
	}
	return out
}

// linesNotIn are the lines of a that b does not have (as many times).
func linesNotIn(a, b string) []string {
	have := map[string]int{}
	for _, l := range textLines(b) {
		have[l]++
	}
	var out []string
	for _, l := range textLines(a) {
		if have[l] > 0 {
			have[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

// textLines are a text's lines; an empty text has none.
func textLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}
