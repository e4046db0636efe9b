package diagnose

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for a person: facts, access, prediction,
// measurement, counters, verdict with evidence and recommendations, and
// the cleanup check.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	f := r.Facts
	p("FACTS (read-only)")
	p("  kubernetes\t%s", f.Kubernetes)
	for _, n := range f.Nodes {
		state := ""
		if !n.Ready {
			state = " (not ready)"
		}
		p("  node %s%s\t%s", n.Name, state, n.Kernel.Summary())
	}
	p("  kube-proxy\t%s (%s)", orUnknown(f.KubeProxy.Mode), f.KubeProxy.Source)
	p("  cluster DNS\t%s, VIP %s, %d ready endpoint(s)%s", orUnknown(f.DNS.Server), orUnknown(f.DNS.VIP), f.DNS.Ready, endpoints(f.DNS))
	if f.CoreDNS != nil {
		for _, s := range f.CoreDNS.Servers {
			p("  CoreDNS\t%s", s.Summary())
		}
		for _, pr := range f.CoreDNS.Problems {
			p("  CoreDNS\tnot understood: %s", pr)
		}
	}
	if nl := f.NodeLocal; nl != nil {
		p("  NodeLocal DNSCache\t%s on %s, %s ready, binds the VIP: %t, force_tcp to: %s (%s)", nl.DaemonSet, strings.Join(nl.LocalIPs, ","), nl.Ready, nl.InterceptsVIP, orNone(nl.ForceTCP), nl.Source)
	} else {
		p("  NodeLocal DNSCache\tnone (no DaemonSet %s)", strings.Join(nodeLocalNames, " or "))
	}
	var cnis []string
	for _, c := range f.CNIs {
		s := c.Name + " (" + c.DaemonSet + ")"
		if c.Note != "" {
			s += ": " + c.Note
		}
		cnis = append(cnis, s)
	}
	p("  pod network\t%s", orNone(cnis))
	if f.Cilium != nil {
		p("  Cilium\tkube-proxy-replacement %q, socket LB %t: %s", f.Cilium.KubeProxyReplacement, f.Cilium.SocketLB, f.Cilium.Note)
	}
	if f.Kubelet != nil {
		p("  kubelet clusterDNS\t%s (%s)", strings.Join(f.Kubelet.ClusterDNS, ","), f.Kubelet.Source)
	}
	for _, n := range f.NotRead {
		p("  not read\t%s", n)
	}

	p("")
	p("ACCESS\t%s (asked for: %s)", r.Access.Tier, r.Access.Wanted)
	for _, m := range r.Access.Missing {
		p("  missing\t%s", m)
	}
	for _, m := range r.Access.FactsMissing() {
		p("  missing\t%s", m)
	}

	p("")
	p("PREDICTION\t%s", r.Prediction.Verdict)
	for _, s := range r.Prediction.Reasons {
		p("  - %s", s)
	}
	for _, s := range r.Prediction.Backfires {
		p("  backfire: %s", s)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if err := r.writeMeasurement(w); err != nil {
		return err
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "VERDICT  %s\n", r.Verdict.Verdict)
	for _, e := range r.Verdict.Evidence {
		fmt.Fprintf(w, "  evidence: %s\n", e)
	}
	for _, rec := range r.Verdict.Recommendations {
		fmt.Fprintf(w, "  recommend: %s\n", rec)
	}
	if m := r.Measurement; m != nil && m.Cleanup != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, m.Cleanup)
	}
	return nil
}

func (r *Report) writeMeasurement(w io.Writer) error {
	m := r.Measurement
	if m == nil || len(m.Bursts) == 0 {
		why := r.Skipped
		if why == "" {
			why = "none"
		}
		fmt.Fprintf(w, "MEASUREMENT  skipped: %s\n", why)
		return nil
	}
	fmt.Fprintf(w, "MEASUREMENT  %s per probe pod at %g lookups/s (concurrency %d) of %s, in namespace %s\n",
		m.Load.Duration, m.Load.Rate, m.Load.Concurrency, ProbeNames, m.Namespace)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVARIANT\tTARGET\tLOOKUPS\t≥1s\tRETRIED\tTIMEOUTS\tP50 ms\tP99 ms\tMAX ms\t")
	for _, b := range m.Bursts {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t\n",
			b.Node, b.Variant.Name, b.Target.Name, b.Target.IP, b.Lookups, b.Delayed, b.Retried, b.Timeouts, b.P50MS, b.P99MS, b.MaxMS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range m.Bursts {
		if b.Problem != "" {
			fmt.Fprintf(w, "  %s: %s\n", b.Pod, b.Problem)
		}
	}
	fmt.Fprintln(w)
	if len(m.Counters) == 0 {
		fmt.Fprintf(w, "COUNTERS  %s\n", orUnknown(m.CountersNote))
		return nil
	}
	fmt.Fprintln(w, "COUNTERS  (the node's /proc/net/stat/nf_conntrack around the probes' window)")
	for _, c := range m.Counters {
		fmt.Fprintf(w, "  %s: %s\n", c.Node, c.Summary())
	}
	return nil
}

func endpoints(d DNSService) string {
	var out []string
	for _, e := range d.Endpoints {
		s := e.IP
		if e.Node != "" {
			s += " on " + e.Node
		}
		if !e.Ready {
			s += " (not ready)"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, ", ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
