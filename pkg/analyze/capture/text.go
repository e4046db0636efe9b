package capture

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/results"
)

// WriteText writes r for a person: the counts first, then each re-send
// (5 s multiples marked) and each unanswered query.
func WriteText(w io.Writer, r *results.CaptureReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "packets %d (link %s): %d DNS queries, %d answers, %d answers to unseen queries, %d not DNS/UDP, %d DNS/TCP segments, %d undecodable\n",
		r.Packets, r.LinkType, r.Queries, r.Answers, r.Unmatched, r.NotDNS, r.TCPSegments, r.Undecodable)
	fmt.Fprintf(&b, "A+AAAA pairs < %d µs apart: %d from the same source port, %d from different ports\n",
		r.PairWindowUS, r.SamePortPairs, r.DifferentPortPairs)
	fmt.Fprintf(&b, "re-sends (same ID): %d, of which %d at 5 s multiples\n", len(r.Resends), r.ResendsAt5s)
	for _, s := range r.Resends {
		mark := ""
		if s.At5s {
			mark = "  <-- 5 s multiple"
		}
		fmt.Fprintf(&b, "  %-5s %s from %s:%d id %d after %.1f ms%s\n", s.Type, s.Name, s.Client, s.SrcPort, s.ID, s.AfterMS, mark)
	}
	fmt.Fprintf(&b, "unanswered: %d\n", r.Unanswered)
	for _, q := range r.UnansweredList {
		fmt.Fprintf(&b, "  %-5s %s from %s:%d id %d at %.1f ms\n", q.Type, q.Name, q.Client, q.SrcPort, q.ID, q.AtMS)
	}
	l := r.Lookups
	fmt.Fprintf(&b, "lookups: %d (ok %d, nxdomain %d, unanswered %d)\n", l.Count, l.ByResult["ok"], l.ByResult["nxdomain"], l.ByResult["unanswered"])
	fmt.Fprintf(&b, "  names tried per lookup: %s\n", histogram(l.NamesTried))
	fmt.Fprintf(&b, "  queries per lookup:     %s\n", histogram(l.QueriesPer))
	for _, p := range l.Patterns {
		fmt.Fprintf(&b, "  %6d × %s\n", p.Count, strings.Join(p.Names, " → "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// histogram prints "n×k" pairs in ascending k.
func histogram(h map[string]uint64) string {
	keys := make([]int, 0, len(h))
	for k := range h {
		n, _ := strconv.Atoi(k)
		keys = append(keys, n)
	}
	sort.Ints(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %d", k, h[strconv.Itoa(k)]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
