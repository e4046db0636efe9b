package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// Verdicts after a measurement (or the prediction's, without one).
const (
	VerdictAffected     = "affected"
	VerdictOtherCause   = "affected, and not only by the DNAT race"
	VerdictNotAffected  = "not affected in the measured window"
	VerdictInconclusive = "inconclusive"
)

// Verdict is the answer, its evidence and what to do.
type Verdict struct {
	Verdict         string   `json:"verdict"`
	Evidence        []string `json:"evidence"`
	Recommendations []string `json:"recommendations,omitempty"`
}

// Tally sums the bursts of one variant against one kind of target.
type Tally struct {
	Variant  string   `json:"variant"`
	Target   string   `json:"target"`
	Lookups  uint64   `json:"lookups"`
	Delayed  uint64   `json:"delayedOver1s"`
	Retried  uint64   `json:"retried"`
	Timeouts uint64   `json:"timeouts"`
	Nodes    []string `json:"nodes"` // nodes with retried lookups
}

// Tallies sums the complete parts of the bursts by variant and target kind,
// in Variants order.
func Tallies(bursts []Burst) []Tally {
	var out []Tally
	find := func(v, t string) *Tally {
		for i := range out {
			if out[i].Variant == v && out[i].Target == t {
				return &out[i]
			}
		}
		out = append(out, Tally{Variant: v, Target: t})
		return &out[len(out)-1]
	}
	for _, b := range bursts {
		t := find(b.Variant.Name, b.Target.Name)
		t.Lookups += b.Lookups
		t.Delayed += b.Delayed
		t.Retried += b.Retried
		t.Timeouts += b.Timeouts
		if b.Retried > 0 && !slices.Contains(t.Nodes, b.Node) {
			t.Nodes = append(t.Nodes, b.Node)
		}
	}
	return out
}

func tally(ts []Tally, variant, target string) Tally {
	for _, t := range ts {
		if t.Variant == variant && t.Target == target {
			return t
		}
	}
	return Tally{Variant: variant, Target: target}
}

func (t Tally) String() string {
	s := fmt.Sprintf("%s → %s: %d of %d lookups waited for a retry", t.Variant, t.Target, t.Retried, t.Lookups)
	if len(t.Nodes) > 0 {
		s += " (on " + strings.Join(t.Nodes, ", ") + ")"
	}
	return s
}

// Judge turns the prediction and the measurement into a verdict with its
// evidence and a recommendation. Without a measurement the prediction is
// the verdict, said as such.
func Judge(f Facts, p Prediction, m *Measurement) Verdict {
	var v Verdict
	ev := func(format string, a ...any) { v.Evidence = append(v.Evidence, fmt.Sprintf(format, a...)) }
	if m == nil || len(m.Bursts) == 0 {
		v.Verdict = p.Verdict + " (not measured)"
		ev("no measurement: the verdict is the prediction from the facts")
		if p.Verdict == PredictAffected {
			v.Recommendations = recommend(f, true, true)
		}
		return v
	}
	ts := Tallies(m.Bursts)
	var incomplete []string
	for _, b := range m.Bursts {
		if !b.Complete {
			incomplete = append(incomplete, fmt.Sprintf("%s (%s → %s on %s): %s", b.Pod, b.Variant.Name, b.Target.Name, b.Node, b.Problem))
		}
	}
	if len(incomplete) == len(m.Bursts) {
		v.Verdict = VerdictInconclusive
		ev("no probe finished: %s", strings.Join(incomplete[:min(3, len(incomplete))], "; "))
		return v
	}
	if len(incomplete) > 0 {
		ev("%d of %d probes incomplete (their lookups still count): %s", len(incomplete), len(m.Bursts), strings.Join(incomplete[:min(3, len(incomplete))], "; "))
	}
	vip := tally(ts, "glibc", TargetVIP)
	direct := tally(ts, "glibc", TargetDNSPod)
	reopen := tally(ts, "glibc+single-request-reopen", TargetVIP)
	usevc := tally(ts, "glibc+use-vc", TargetVIP)
	musl := tally(ts, "musl", TargetVIP)
	local := tally(ts, "glibc", TargetNodeLocal)
	for _, t := range ts {
		ev("%s", t)
	}
	counters := counterEvidence(m)
	v.Evidence = append(v.Evidence, counters...)
	anyRetried := slices.ContainsFunc(ts, func(t Tally) bool { return t.Retried > 0 })
	switch {
	case !anyRetried:
		v.Verdict = VerdictNotAffected
		if p.Verdict == PredictAffected {
			ev("the prediction said affected, but no lookup was delayed at this bounded rate: the race needs concurrent lookups on one node; a longer --duration, or the lab on this shape (labrun run), can tell more")
		}
		return v
	case direct.Retried > 0 && direct.Lookups > 0 && rate(direct) >= rate(vip)/2:
		v.Verdict = VerdictOtherCause
		ev("glibc straight to the DNS pods (no DNAT) is delayed too (%.2f%% vs %.2f%% through the VIP): the DNS servers, packet loss or the network, not only the race", 100*rate(direct), 100*rate(vip))
	case vip.Retried > 0 || musl.Retried > 0:
		v.Verdict = VerdictAffected
		if direct.Lookups > 0 {
			ev("the delays are on the VIP path: %d of %d lookups straight to the DNS pods were delayed", direct.Retried, direct.Lookups)
		}
	default:
		v.Verdict = VerdictAffected
		ev("delays only in a mitigated variant: see the table; more data (a longer --duration) would tell whether it is chance")
	}
	if p.Verdict == PredictNotAffected {
		ev("the facts predicted not affected, the measurement disagrees: the prediction is by kernel version and set-up only (a node's kernel may lack the fix its version implies, or the delays have another cause)")
	}
	if vip.Retried > 0 && reopen.Lookups > 0 && reopen.Retried == 0 {
		ev("single-request-reopen removed them for glibc: %s", reopen)
	}
	if vip.Retried > 0 && usevc.Lookups > 0 && usevc.Retried == 0 {
		ev("use-vc removed them for glibc: %s", usevc)
	}
	if musl.Retried > 0 {
		ev("musl is delayed: it ignores single-request-reopen and use-vc (%s)", musl)
	}
	if local.Lookups > 0 && local.Retried == 0 {
		ev("through NodeLocal DNSCache (%s): none delayed", f.NodeLocal.ListenIP)
	}
	v.Recommendations = recommend(f, vip.Retried > 0 && (reopen.Lookups == 0 || reopen.Retried == 0), musl.Retried > 0 || musl.Lookups == 0)
	return v
}

// rate is the share of a tally's lookups that waited for a retry.
func rate(t Tally) float64 {
	if t.Lookups == 0 {
		return 0
	}
	return float64(t.Retried) / float64(t.Lookups)
}

// counterEvidence states the counters' deltas, kernel-aware.
func counterEvidence(m *Measurement) []string {
	if len(m.Counters) == 0 {
		if m.CountersNote != "" {
			return []string{"node counters " + m.CountersNote}
		}
		return nil
	}
	var out []string
	for _, c := range m.Counters {
		out = append(out, fmt.Sprintf("node %s over the same window: %s", c.Node, c.Summary()))
	}
	return out
}

// recommend lists the fixes the lab's claims support for what was found:
// glibc's resolv.conf options (claim 2) when glibc is delayed and they
// helped or were not measured, NodeLocal DNSCache for every resolver
// (claim 5) when musl or c-ares workloads may be affected, and the kernel.
func recommend(f Facts, glibcOptionsHelp, otherResolvers bool) []string {
	var out []string
	if glibcOptionsHelp {
		out = append(out, "glibc workloads: add `options single-request-reopen` (pod dnsConfig.options; use-vc also works, slower per query)")
	}
	switch nl := f.NodeLocal; {
	case nl == nil && otherResolvers:
		out = append(out, "musl (Alpine) and gRPC c-ares workloads ignore those options: deploy NodeLocal DNSCache (no DNAT, untracked), the fix for every resolver")
	case nl == nil:
		out = append(out, "or deploy NodeLocal DNSCache, the fix for every resolver (musl, c-ares included)")
	case !nl.InterceptsVIP:
		out = append(out, fmt.Sprintf("NodeLocal DNSCache runs on %s but pods do not use it: set the kubelet's clusterDNS to %s (or bind the VIP under kube-proxy iptables/nftables)", nl.ListenIP, nl.ListenIP))
	}
	var old []string
	for _, n := range f.Nodes {
		if n.Kernel.Known && !n.Kernel.DifferentBackendsResolved {
			old = append(old, n.Name)
		}
	}
	if len(old) > 0 {
		out = append(out, fmt.Sprintf("nodes %s: a kernel ≥ 5.6 (or one with commit 6a757c07e51f backported) resolves these clashes instead of dropping", strings.Join(old, ", ")))
	}
	out = append(out, "compare the fixes on this shape in the lab before changing production: labrun run with a scenario of this cluster's shape (kind shares the host's kernel: run it under the race emulator)")
	return out
}
