// Package capture reads a pcap of DNS traffic and reports what the field
// reports diagnose with tcpdump: A and AAAA queries leaving from the same
// source port microseconds apart (the 5-tuple the conntrack race needs),
// queries re-sent with the same ID after the resolver's timeout (5 s
// multiples), queries never answered, and how many names each lookup tried
// (search-list expansion under ndots).
//
// It streams: memory grows with the queries still open and with what it
// reports, not with the capture, so a capture of millions of packets is fine.
// Only DNS over UDP port 53 is analysed; TCP segments on port 53 are counted.
// Lookups are grouped per client address by the first label of the name
// (search-list candidates of one name share it): a query for a name and type
// the open lookup already asked, or for a name it walked past, starts a new
// lookup. Concurrent lookups of one name from one client can be merged; the
// grouping is a heuristic, the other counts are exact.
//
// The report is results.CaptureReport: its JSON is both `labrun pcap --json`
// and the analysis in a run's captures/<cell>.json, so the type lives with
// the run directory's other formats.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/results"
)

// Options tune the analysis.
type Options struct {
	// PairWindow: an A and an AAAA query for one name from one client less
	// than this apart form a pair. Default 1 ms.
	PairWindow time.Duration
	// LookupGap: a lookup idle this long is over. Default 30 s.
	LookupGap time.Duration
	// ListLookups adds every lookup to the report's LookupList.
	ListLookups bool
}

// FormatError is input that is not a readable pcap; Offset is the byte
// offset (in the uncompressed stream) where reading failed.
type FormatError struct {
	Offset int64
	Packet uint64 // packets read before the failure
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("pcap: at byte offset %d (after %d packets): %v", e.Offset, e.Packet, e.Err)
}
func (e *FormatError) Unwrap() error { return e.Err }

const (
	pcapHeaderLen   = 24
	recordHeaderLen = 16
	pcapngMagic     = 0x0a0d0d0a
)

// Analyze reads a pcap (optionally gzipped) from r and analyses it.
func Analyze(r io.Reader, opts Options) (*results.CaptureReport, error) {
	if opts.PairWindow <= 0 {
		opts.PairWindow = time.Millisecond
	}
	if opts.LookupGap <= 0 {
		opts.LookupGap = 30 * time.Second
	}
	br := bufio.NewReaderSize(r, 1<<16)
	if head, err := br.Peek(4); err == nil && binary.LittleEndian.Uint32(head) == pcapngMagic {
		return nil, &FormatError{Err: errors.New("pcapng is not supported: write pcap (tcpdump -w does; editcap -F pcap converts)")}
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, &FormatError{Err: fmt.Errorf("not a pcap file: %w", err)}
	}
	a := newAnalyzer(opts, pr.LinkType())
	if a.parser == nil {
		return nil, &FormatError{Offset: 20, Err: fmt.Errorf("link type %s (%d) is not supported (want Ethernet, Linux SLL/SLL2 or raw IP)", pr.LinkType(), int(pr.LinkType()))}
	}
	offset := int64(pcapHeaderLen)
	for {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, &FormatError{Offset: offset, Packet: a.rep.Packets, Err: fmt.Errorf("packet record: %w", err)}
		}
		offset += recordHeaderLen + int64(ci.CaptureLength)
		a.packet(data, ci.Timestamp)
	}
	return a.finish(), nil
}

type flowKey struct {
	client netip.Addr
	id     uint16
	name   string
	qtype  uint16
}

type pending struct {
	first  time.Time
	port   uint16
	lookup *lookup
}

type pairKey struct {
	client netip.Addr
	name   string
}

type firstSend struct {
	at     time.Time
	port   uint16
	paired bool
}

type lookupKey struct {
	client netip.Addr
	label  string
}

type lookup struct {
	client  netip.Addr
	names   []string
	asked   map[string]bool // name + "/" + type, first sends
	queries int
	open    int // queries not answered yet
	ok      bool
	start   time.Time
	last    time.Time
	lastAns time.Time
}

type analyzer struct {
	opts   Options
	rep    results.CaptureReport
	start  time.Time
	first  gopacket.LayerType
	parser *gopacket.DecodingLayerParser
	ip4    layers.IPv4
	ip6    layers.IPv6
	udp    layers.UDP
	tcp    layers.TCP
	layers []gopacket.LayerType
	msg    dns.Msg

	pending  map[flowKey]*pending
	pairs    map[pairKey]*[2]firstSend // [0] A, [1] AAAA
	open     map[lookupKey]*lookup
	linger   map[*lookup]bool // replaced while queries were still open
	patterns map[string]*results.CapturePattern
	sweepAt  time.Time
}

func newAnalyzer(opts Options, lt layers.LinkType) *analyzer {
	a := &analyzer{
		opts:     opts,
		pending:  map[flowKey]*pending{},
		pairs:    map[pairKey]*[2]firstSend{},
		open:     map[lookupKey]*lookup{},
		linger:   map[*lookup]bool{},
		patterns: map[string]*results.CapturePattern{},
	}
	a.rep.LinkType = lt.String()
	a.rep.PairWindowUS = opts.PairWindow.Microseconds()
	a.rep.Resends = []results.CaptureResend{}
	a.rep.UnansweredList = []results.CaptureQuery{}
	a.rep.Lookups = results.CaptureLookupStats{ByResult: map[string]uint64{"ok": 0, "nxdomain": 0, "unanswered": 0}, NamesTried: map[string]uint64{}, QueriesPer: map[string]uint64{}, Patterns: []results.CapturePattern{}}
	var eth layers.Ethernet
	var sll layers.LinuxSLL
	var sll2 layers.LinuxSLL2
	var dot1q layers.Dot1Q
	switch lt {
	case layers.LinkTypeEthernet:
		a.first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		a.first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		a.first = layers.LayerTypeLinuxSLL2
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		a.first = layers.LayerTypeIPv4 // raw IPv6 packets fail IPv4 decoding and count as not DNS
	case layers.LinkTypeIPv6:
		a.first = layers.LayerTypeIPv6
	default:
		return a
	}
	a.parser = gopacket.NewDecodingLayerParser(a.first, &eth, &sll, &sll2, &dot1q, &a.ip4, &a.ip6, &a.udp, &a.tcp)
	a.parser.IgnoreUnsupported = true
	return a
}

func (a *analyzer) ms(t time.Time) float64 { return float64(t.Sub(a.start).Microseconds()) / 1000 }

func (a *analyzer) packet(data []byte, ts time.Time) {
	a.rep.Packets++
	if a.start.IsZero() {
		a.start = ts
		a.sweepAt = ts.Add(a.opts.LookupGap)
	}
	if ts.After(a.sweepAt) {
		a.sweep(ts)
		a.sweepAt = ts.Add(a.opts.LookupGap)
	}
	a.layers = a.layers[:0]
	if err := a.parser.DecodeLayers(data, &a.layers); err != nil && len(a.layers) == 0 {
		a.rep.NotDNS++
		return
	}
	var src, dst netip.Addr
	var isUDP bool
	for _, lt := range a.layers {
		switch lt {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(a.ip4.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(a.ip4.DstIP.To4())
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(a.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(a.ip6.DstIP)
		case layers.LayerTypeUDP:
			isUDP = true
		case layers.LayerTypeTCP:
			if a.tcp.SrcPort == 53 || a.tcp.DstPort == 53 {
				a.rep.TCPSegments++
				return
			}
		}
	}
	if !isUDP || !src.IsValid() || (a.udp.SrcPort != 53 && a.udp.DstPort != 53) {
		a.rep.NotDNS++
		return
	}
	if err := a.msg.Unpack(a.udp.Payload); err != nil || len(a.msg.Question) == 0 {
		a.rep.Undecodable++
		return
	}
	q := a.msg.Question[0]
	name := strings.ToLower(q.Name)
	if !a.msg.Response {
		a.query(src, uint16(a.udp.SrcPort), a.msg.Id, name, q.Qtype, ts)
		return
	}
	a.answer(dst, a.msg.Id, name, q.Qtype, a.msg.Rcode, countAddrs(a.msg.Answer), ts)
}

func countAddrs(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
			n++
		}
	}
	return n
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return strconv.Itoa(int(t))
}

func (a *analyzer) query(client netip.Addr, port, id uint16, name string, qtype uint16, ts time.Time) {
	a.rep.Queries++
	k := flowKey{client, id, name, qtype}
	if p, ok := a.pending[k]; ok && ts.Sub(p.first) < a.opts.LookupGap {
		after := float64(ts.Sub(p.first).Microseconds()) / 1000
		a.rep.Resends = append(a.rep.Resends, results.CaptureResend{Name: name, Type: typeName(qtype), Client: client.String(), SrcPort: port, ID: id, AfterMS: after, At5s: at5s(after)})
		if at5s(after) {
			a.rep.ResendsAt5s++
		}
		if p.lookup != nil {
			p.lookup.queries++
			p.lookup.last = ts
		}
		return
	}
	if p, ok := a.pending[k]; ok { // an old unanswered query with a reused ID
		a.unanswered(k, p)
	}
	l := a.lookupFor(client, name, qtype, ts)
	l.queries++
	l.open++
	l.last = ts
	a.pending[k] = &pending{first: ts, port: port, lookup: l}
	a.pair(client, port, name, qtype, ts)
}

// at5s: within 250 ms of a non-zero multiple of 5 s.
func at5s(ms float64) bool {
	if ms < 4750 {
		return false
	}
	n := math.Round(ms / 5000)
	return math.Abs(ms-n*5000) <= 250
}

func (a *analyzer) pair(client netip.Addr, port uint16, name string, qtype uint16, ts time.Time) {
	var mine, other int
	switch qtype {
	case dns.TypeA:
		mine, other = 0, 1
	case dns.TypeAAAA:
		mine, other = 1, 0
	default:
		return
	}
	pk := pairKey{client, name}
	p := a.pairs[pk]
	if p == nil {
		p = &[2]firstSend{}
		a.pairs[pk] = p
	}
	o := p[other]
	if !o.at.IsZero() && !o.paired && ts.Sub(o.at) < a.opts.PairWindow {
		if o.port == port {
			a.rep.SamePortPairs++
		} else {
			a.rep.DifferentPortPairs++
		}
		p[other].paired = true
		p[mine] = firstSend{at: ts, port: port, paired: true}
		return
	}
	p[mine] = firstSend{at: ts, port: port}
}

func (a *analyzer) answer(client netip.Addr, id uint16, name string, qtype uint16, rcode, addrs int, ts time.Time) {
	a.rep.Answers++
	k := flowKey{client, id, name, qtype}
	p, ok := a.pending[k]
	if !ok {
		a.rep.Unmatched++
		return
	}
	delete(a.pending, k)
	if l := p.lookup; l != nil {
		l.open--
		l.lastAns = ts
		if rcode == dns.RcodeSuccess && addrs > 0 {
			l.ok = true
		}
		if l.open == 0 && a.linger[l] {
			delete(a.linger, l)
			a.close(l)
		}
	}
}

func firstLabel(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

func (a *analyzer) lookupFor(client netip.Addr, name string, qtype uint16, ts time.Time) *lookup {
	key := lookupKey{client, firstLabel(name)}
	asked := name + "/" + typeName(qtype)
	l := a.open[key]
	join := l != nil && ts.Sub(l.last) < a.opts.LookupGap && !l.asked[asked]
	if join {
		last := l.names[len(l.names)-1]
		walkedBack := name != last && contains(l.names, name)
		if walkedBack || (l.ok && name != last) {
			join = false
		}
	}
	if !join {
		if l != nil {
			a.retire(l)
		}
		l = &lookup{client: client, asked: map[string]bool{}, start: ts}
		a.open[key] = l
	}
	if !contains(l.names, name) {
		l.names = append(l.names, name)
	}
	l.asked[asked] = true
	return l
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// retire ends l as the open lookup of its key. A lookup with queries still
// unanswered lingers until they are answered or swept, so a re-send 5 s
// later still counts in it even if the same name was looked up meanwhile.
func (a *analyzer) retire(l *lookup) {
	if l.open > 0 {
		a.linger[l] = true
		return
	}
	a.close(l)
}

func (a *analyzer) close(l *lookup) {
	st := &a.rep.Lookups
	st.Count++
	result := "nxdomain"
	switch {
	case l.ok:
		result = "ok"
	case l.open > 0:
		result = "unanswered"
	}
	st.ByResult[result]++
	st.NamesTried[strconv.Itoa(len(l.names))]++
	st.QueriesPer[strconv.Itoa(l.queries)]++
	key := strings.Join(l.names, " ")
	if p := a.patterns[key]; p != nil {
		p.Count++
	} else {
		a.patterns[key] = &results.CapturePattern{Names: append([]string(nil), l.names...), Count: 1}
	}
	if a.opts.ListLookups {
		end := l.last
		if l.lastAns.After(end) {
			end = l.lastAns
		}
		a.rep.LookupList = append(a.rep.LookupList, results.CaptureLookup{
			Client: l.client.String(), Names: l.names, Queries: l.queries, Result: result,
			StartMS: a.ms(l.start), DurationMS: float64(end.Sub(l.start).Microseconds()) / 1000,
		})
	}
}

func (a *analyzer) unanswered(k flowKey, p *pending) {
	a.rep.Unanswered++
	a.rep.UnansweredList = append(a.rep.UnansweredList, results.CaptureQuery{Name: k.name, Type: typeName(k.qtype), Client: k.client.String(), SrcPort: p.port, ID: k.id, AtMS: a.ms(p.first)})
	delete(a.pending, k)
}

// sweep closes lookups and forgets pair candidates idle for LookupGap, so
// memory follows the open state, not the capture's length.
func (a *analyzer) sweep(now time.Time) {
	for k, l := range a.open {
		if now.Sub(l.last) >= a.opts.LookupGap && now.Sub(l.lastAns) >= a.opts.LookupGap {
			a.close(l)
			delete(a.open, k)
		}
	}
	for l := range a.linger {
		if now.Sub(l.last) >= a.opts.LookupGap && now.Sub(l.lastAns) >= a.opts.LookupGap {
			a.close(l)
			delete(a.linger, l)
		}
	}
	for k, p := range a.pairs {
		if now.Sub(p[0].at) > a.opts.PairWindow && now.Sub(p[1].at) > a.opts.PairWindow {
			delete(a.pairs, k)
		}
	}
	for k, p := range a.pending {
		if now.Sub(p.first) >= 2*a.opts.LookupGap {
			a.unanswered(k, p)
		}
	}
}

func (a *analyzer) finish() *results.CaptureReport {
	// Unanswered queries in capture order, then the open lookups closed.
	left := make([]flowKey, 0, len(a.pending))
	for k := range a.pending {
		left = append(left, k)
	}
	sort.Slice(left, func(i, j int) bool { return a.pending[left[i]].first.Before(a.pending[left[j]].first) })
	for _, k := range left {
		a.unanswered(k, a.pending[k])
	}
	open := make([]*lookup, 0, len(a.open)+len(a.linger))
	for _, l := range a.open {
		open = append(open, l)
	}
	for l := range a.linger {
		open = append(open, l)
	}
	sort.Slice(open, func(i, j int) bool { return open[i].start.Before(open[j].start) })
	for _, l := range open {
		a.close(l)
	}
	sort.Slice(a.rep.UnansweredList, func(i, j int) bool { return a.rep.UnansweredList[i].AtMS < a.rep.UnansweredList[j].AtMS })
	sort.SliceStable(a.rep.LookupList, func(i, j int) bool { return a.rep.LookupList[i].StartMS < a.rep.LookupList[j].StartMS })
	for _, p := range a.patterns {
		a.rep.Lookups.Patterns = append(a.rep.Lookups.Patterns, *p)
	}
	sort.Slice(a.rep.Lookups.Patterns, func(i, j int) bool {
		pi, pj := a.rep.Lookups.Patterns[i], a.rep.Lookups.Patterns[j]
		if pi.Count != pj.Count {
			return pi.Count > pj.Count
		}
		return strings.Join(pi.Names, " ") < strings.Join(pj.Names, " ")
	})
	return &a.rep
}
