package results

import (
	"errors"
	"io/fs"
	"net/netip"
)

// CaptureSummary is captures/<cell>.json: the analysis of every probe pod's
// packets taken together (CaptureReport, the fields of `labrun pcap --json`),
// and how it was made. pkg/collect writes it; the analysis reads it.
type CaptureSummary struct {
	CaptureReport
	Pods []CapturePod `json:"pods"`
	// Copies is how many packets were dropped as copies of one kept;
	// KernelDropped how many the kernel dropped before tcpdump saw them (the
	// analysis undercounts then).
	Copies        uint64            `json:"copies_removed"`
	KernelDropped uint64            `json:"dropped_by_kernel"`
	Filters       map[string]string `json:"filters"`
}

// CapturePod is a pod whose packets are kept: its address and its node.
type CapturePod struct {
	Name string     `json:"pod"`
	Node string     `json:"node"`
	IP   netip.Addr `json:"ip"`
	// Packets kept, File where they are (relative to the summary's dir).
	Packets int    `json:"packets"`
	File    string `json:"file,omitempty"`
}

// CaptureReport is the analysis of one capture (pkg/analyze/capture makes
// it). JSON field names are part of the `labrun pcap --json` output.
type CaptureReport struct {
	LinkType    string `json:"link_type"`
	Packets     uint64 `json:"packets"`
	Queries     uint64 `json:"queries"`           // query packets, re-sends included
	Answers     uint64 `json:"answers"`           // answer packets
	Unmatched   uint64 `json:"unmatched_answers"` // answers to no query seen
	NotDNS      uint64 `json:"not_dns"`           // packets that are not DNS over UDP port 53
	TCPSegments uint64 `json:"tcp_dns_segments"`
	Undecodable uint64 `json:"undecodable_dns"` // UDP port 53 payloads that do not parse as DNS

	SamePortPairs      uint64 `json:"same_port_pairs"`      // A+AAAA, same client and port, < PairWindow apart
	DifferentPortPairs uint64 `json:"different_port_pairs"` // A+AAAA, same client, different ports, < PairWindow apart
	PairWindowUS       int64  `json:"pair_window_us"`

	Resends        []CaptureResend `json:"resends"`
	ResendsAt5s    uint64          `json:"resends_at_5s_multiples"`
	Unanswered     uint64          `json:"unanswered"`
	UnansweredList []CaptureQuery  `json:"unanswered_queries"`

	Lookups    CaptureLookupStats `json:"lookups"`
	LookupList []CaptureLookup    `json:"lookup_list,omitempty"`
}

// CaptureResend is a query sent again with the same ID, name and type
// before any answer to it was seen.
type CaptureResend struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Client  string `json:"client"`
	SrcPort uint16 `json:"src_port"`
	ID      uint16 `json:"id"`
	// AfterMS is the time since the first send of this query.
	AfterMS float64 `json:"after_ms"`
	// At5s is true when AfterMS is within 250 ms of a multiple of 5 s, the
	// resolvers' default timeout: the signature of a dropped packet.
	At5s bool `json:"at_5s_multiple"`
}

// CaptureQuery identifies one query packet.
type CaptureQuery struct {
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Client  string  `json:"client"`
	SrcPort uint16  `json:"src_port"`
	ID      uint16  `json:"id"`
	AtMS    float64 `json:"at_ms"` // since the first packet of the capture
}

// CaptureLookupStats aggregates a capture's lookups.
type CaptureLookupStats struct {
	Count      uint64            `json:"count"`
	ByResult   map[string]uint64 `json:"by_result"`   // ok, nxdomain, unanswered
	NamesTried map[string]uint64 `json:"names_tried"` // distinct names per lookup → lookups
	QueriesPer map[string]uint64 `json:"queries"`     // query packets per lookup → lookups
	Patterns   []CapturePattern  `json:"patterns"`    // the name sequences tried, most frequent first
}

// CapturePattern is one sequence of names tried, and how many lookups tried it.
type CapturePattern struct {
	Names []string `json:"names"`
	Count uint64   `json:"count"`
}

// CaptureLookup is one lookup, listed when asked for (`labrun pcap --lookups`).
type CaptureLookup struct {
	Client     string   `json:"client"`
	Names      []string `json:"names"`
	Queries    int      `json:"queries"`
	Result     string   `json:"result"`
	StartMS    float64  `json:"start_ms"`
	DurationMS float64  `json:"duration_ms"` // first query to last answer (or last query)
}

// CaptureCounts are the counts of a capture that summary.json keeps for a
// cell (its "capture"): a digest of CaptureReport, under the same names.
type CaptureCounts struct {
	Queries            uint64         `json:"queries"`
	Answers            uint64         `json:"answers"`
	SamePortPairs      uint64         `json:"same_port_pairs"`
	DifferentPortPairs uint64         `json:"different_port_pairs"`
	ResendsAt5s        uint64         `json:"resends_at_5s_multiples"`
	Unanswered         uint64         `json:"unanswered"`
	Lookups            CaptureLookups `json:"lookups"`
}

// CaptureLookups is how many lookups the capture's queries were grouped into.
type CaptureLookups struct {
	Count uint64 `json:"count"`
}

// Counts is the digest of r that summary.json keeps.
func (r *CaptureReport) Counts() CaptureCounts {
	return CaptureCounts{
		Queries: r.Queries, Answers: r.Answers,
		SamePortPairs: r.SamePortPairs, DifferentPortPairs: r.DifferentPortPairs,
		ResendsAt5s: r.ResendsAt5s, Unanswered: r.Unanswered,
		Lookups: CaptureLookups{Count: r.Lookups.Count},
	}
}

// QueriesPerLookup is Queries / Lookups.Count, 0 without lookups.
func (c CaptureCounts) QueriesPerLookup() float64 {
	if c.Lookups.Count == 0 {
		return 0
	}
	return float64(c.Queries) / float64(c.Lookups.Count)
}

// ReadCaptureSummary reads captures/<cell>.json; ok is false when the cell
// has no capture.
func (r RunDir) ReadCaptureSummary(cell string) (c CaptureSummary, ok bool, err error) {
	err = ReadJSON(r.CaptureSummaryPath(cell), &c)
	if errors.Is(err, fs.ErrNotExist) {
		return CaptureSummary{}, false, nil
	}
	return c, err == nil, err
}
