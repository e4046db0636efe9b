package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/results"
)

// synth writes a pcap of DNS packets between clients and a server.
type synth struct {
	t   testing.TB
	w   *pcapgo.Writer
	buf gopacket.SerializeBuffer
	at  time.Time
}

func newSynth(t testing.TB, out io.Writer, lt layers.LinkType) *synth {
	w := pcapgo.NewWriterNanos(out)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	return &synth{t: t, w: w, buf: gopacket.NewSerializeBuffer(), at: time.Unix(1_700_000_000, 0)}
}

const server = "10.96.0.10"

// after advances the clock.
func (s *synth) after(d time.Duration) *synth { s.at = s.at.Add(d); return s }

// query writes a query from client:port.
func (s *synth) query(client string, port uint16, id uint16, name string, qtype uint16) *synth {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	s.udp(client, port, serverFor(client), 53, m)
	return s
}

// serverFor is the DNS server a client talks to, in the client's family.
func serverFor(client string) string {
	if strings.Contains(client, ":") {
		return "fd00:96::a"
	}
	return server
}

// answer writes the server's answer: addrs address records, or NXDOMAIN when 0.
func (s *synth) answer(client string, port uint16, id uint16, name string, qtype uint16, addrs int) *synth {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = id
	m := new(dns.Msg)
	m.SetReply(q)
	if addrs == 0 {
		m.Rcode = dns.RcodeNameError
	}
	for i := 0; i < addrs; i++ {
		if qtype == dns.TypeAAAA {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 5}, AAAA: net.ParseIP("2001:db8::10")})
		} else {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 10)})
		}
	}
	s.udp(serverFor(client), 53, client, port, m)
	return s
}

func (s *synth) udp(src string, sport uint16, dst string, dport uint16, m *dns.Msg) {
	payload, err := m.Pack()
	if err != nil {
		s.t.Fatal(err)
	}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if strings.Contains(src, ":") {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
		_ = u.SetNetworkLayerForChecksum(ip)
		s.write(eth, ip, u, gopacket.Payload(payload))
		return
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	_ = u.SetNetworkLayerForChecksum(ip)
	s.write(eth, ip, u, gopacket.Payload(payload))
}

func (s *synth) tcp(src string, sport uint16, dst string, dport uint16) *synth {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	_ = tc.SetNetworkLayerForChecksum(ip)
	s.write(eth, ip, tc)
	return s
}

func (s *synth) write(ls ...gopacket.SerializableLayer) {
	if err := gopacket.SerializeLayers(s.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		s.t.Fatal(err)
	}
	b := s.buf.Bytes()
	if err := s.w.WritePacket(gopacket.CaptureInfo{Timestamp: s.at, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		s.t.Fatal(err)
	}
}

const (
	c1   = "10.99.0.2"
	c2   = "10.99.1.2"
	name = "api.lab.example."
	A    = dns.TypeA
	AAAA = dns.TypeAAAA
)

var search = []string{"api.lab.example.default.svc.cluster.local.", "api.lab.example.svc.cluster.local.", "api.lab.example.cluster.local.", name}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name   string
		write  func(s *synth)
		check  func(t *testing.T, r *results.CaptureReport)
		verify string // a line the text output must contain
	}{
		{
			name: "glibc: A and AAAA from one port, microseconds apart",
			write: func(s *synth) {
				s.query(c1, 40000, 1, name, A).after(20*time.Microsecond).query(c1, 40000, 2, name, AAAA)
				s.after(300*time.Microsecond).answer(c1, 40000, 1, name, A, 1).after(10*time.Microsecond).answer(c1, 40000, 2, name, AAAA, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "queries", r.Queries, 2)
				want(t, "answers", r.Answers, 2)
				want(t, "same port pairs", r.SamePortPairs, 1)
				want(t, "different port pairs", r.DifferentPortPairs, 0)
				want(t, "unanswered", r.Unanswered, 0)
				want(t, "lookups", r.Lookups.Count, 1)
				want(t, "ok lookups", r.Lookups.ByResult["ok"], 1)
			},
			verify: "1 from the same source port, 0 from different ports",
		},
		{
			name: "single-request-reopen: two ports",
			write: func(s *synth) {
				s.query(c1, 40001, 1, name, A).after(40*time.Microsecond).query(c1, 40002, 2, name, AAAA)
				s.after(time.Millisecond).answer(c1, 40001, 1, name, A, 1).answer(c1, 40002, 2, name, AAAA, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "same port pairs", r.SamePortPairs, 0)
				want(t, "different port pairs", r.DifferentPortPairs, 1)
			},
		},
		{
			name: "sequential (single-request): more than the window apart is no pair",
			write: func(s *synth) {
				s.query(c1, 40003, 1, name, A).after(3*time.Millisecond).answer(c1, 40003, 1, name, A, 1)
				s.after(10*time.Microsecond).query(c1, 40003, 2, name, AAAA).after(time.Millisecond).answer(c1, 40003, 2, name, AAAA, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "pairs", r.SamePortPairs+r.DifferentPortPairs, 0)
				want(t, "lookups", r.Lookups.Count, 1)
			},
		},
		{
			name: "the race: AAAA lost, re-sent 5 s later with the same ID",
			write: func(s *synth) {
				s.query(c1, 40000, 7, name, A).after(10*time.Microsecond).query(c1, 40000, 8, name, AAAA)
				s.after(200*time.Microsecond).answer(c1, 40000, 7, name, A, 1)
				s.after(5*time.Second).query(c1, 40000, 8, name, AAAA).after(200*time.Microsecond).answer(c1, 40000, 8, name, AAAA, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "queries", r.Queries, 3)
				want(t, "resends", uint64(len(r.Resends)), 1)
				want(t, "resends at 5 s", r.ResendsAt5s, 1)
				s := r.Resends[0]
				if s.Name != name || s.Type != "AAAA" || s.SrcPort != 40000 || s.ID != 8 || s.AfterMS < 4999 || s.AfterMS > 5001 || !s.At5s {
					t.Errorf("resend %+v", s)
				}
				want(t, "unanswered", r.Unanswered, 0)
				want(t, "lookups", r.Lookups.Count, 1)
				want(t, "queries in the lookup", r.Lookups.QueriesPer["3"], 1)
			},
			verify: "<-- 5 s multiple",
		},
		{
			name: "a re-send still counts in its lookup after the name was looked up again",
			write: func(s *synth) {
				s.query(c1, 40000, 7, name, A).query(c1, 40000, 8, name, AAAA).answer(c1, 40000, 7, name, A, 1)
				s.after(time.Second).query(c1, 40001, 9, name, A).query(c1, 40001, 10, name, AAAA)
				s.answer(c1, 40001, 9, name, A, 1).answer(c1, 40001, 10, name, AAAA, 1)
				s.after(4*time.Second).query(c1, 40000, 8, name, AAAA).answer(c1, 40000, 8, name, AAAA, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "lookups", r.Lookups.Count, 2)
				want(t, "lookups with 3 queries", r.Lookups.QueriesPer["3"], 1)
				want(t, "lookups with 2 queries", r.Lookups.QueriesPer["2"], 1)
				want(t, "resends at 5 s", r.ResendsAt5s, 1)
			},
		},
		{
			name: "ndots:5 walk: four names, eight queries, one lookup",
			write: func(s *synth) {
				for i, n := range search {
					addrs := 0
					if n == name {
						addrs = 1
					}
					id := uint16(10 + 2*i)
					s.query(c1, 40100, id, n, A).after(5*time.Microsecond).query(c1, 40100, id+1, n, AAAA)
					s.after(300*time.Microsecond).answer(c1, 40100, id, n, A, addrs).answer(c1, 40100, id+1, n, AAAA, addrs)
				}
				// then the same lookup again: a second lookup with the same pattern
				for i, n := range search {
					id := uint16(100 + 2*i)
					s.after(time.Millisecond).query(c1, 40200, id, n, A).query(c1, 40200, id+1, n, AAAA).answer(c1, 40200, id, n, A, 1).answer(c1, 40200, id+1, n, AAAA, 1)
					break // the second lookup was answered at the first name
				}
				// an unrelated lookup from another client
				s.query(c2, 40300, 1, "other.lab.example.", A)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "lookups", r.Lookups.Count, 3)
				want(t, "4 names tried", r.Lookups.NamesTried["4"], 1)
				want(t, "1 name tried", r.Lookups.NamesTried["1"], 2)
				want(t, "8 queries", r.Lookups.QueriesPer["8"], 1)
				want(t, "same port pairs", r.SamePortPairs, 5)
				want(t, "unanswered", r.Unanswered, 1)
				want(t, "unanswered lookups", r.Lookups.ByResult["unanswered"], 1)
				if len(r.Lookups.Patterns) != 3 || strings.Join(r.Lookups.Patterns[0].Names, " ") == "" {
					t.Errorf("patterns %+v", r.Lookups.Patterns)
				}
				found := false
				for _, p := range r.Lookups.Patterns {
					if strings.Join(p.Names, " ") == strings.Join(search, " ") {
						found = true
					}
				}
				if !found {
					t.Errorf("no pattern walks the search list: %+v", r.Lookups.Patterns)
				}
				if len(r.UnansweredList) != 1 || r.UnansweredList[0].Name != "other.lab.example." || r.UnansweredList[0].Client != c2 {
					t.Errorf("unanswered list %+v", r.UnansweredList)
				}
			},
			verify: "4: 1",
		},
		{
			name: "IPv6 clients",
			write: func(s *synth) {
				s.query("fd00:99::2", 40000, 1, name, A).after(20*time.Microsecond).query("fd00:99::2", 40000, 2, name, AAAA)
				s.after(time.Millisecond).answer("fd00:99::2", 40000, 1, name, A, 1)
				s.after(5*time.Second).query("fd00:99::2", 40000, 2, name, AAAA)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "queries", r.Queries, 3)
				want(t, "same port pairs", r.SamePortPairs, 1)
				want(t, "resends at 5 s", r.ResendsAt5s, 1)
				want(t, "unanswered", r.Unanswered, 1)
				if r.Resends[0].Client != "fd00:99::2" {
					t.Errorf("resend from %q", r.Resends[0].Client)
				}
			},
		},
		{
			name: "other traffic is counted, not analysed",
			write: func(s *synth) {
				s.tcp(c1, 50000, "10.0.0.1", 80).tcp(c1, 50001, server, 53)
				s.query(c1, 40000, 1, name, A).answer(c1, 40000, 1, name, A, 1).answer(c1, 40000, 99, name, A, 1)
			},
			check: func(t *testing.T, r *results.CaptureReport) {
				want(t, "packets", r.Packets, 5)
				want(t, "not dns", r.NotDNS, 1)
				want(t, "tcp dns", r.TCPSegments, 1)
				want(t, "unmatched", r.Unmatched, 1)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.write(newSynth(t, &buf, layers.LinkTypeEthernet))
			r, err := Analyze(&buf, Options{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			var text bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if tt.verify != "" && !strings.Contains(text.String(), tt.verify) {
				t.Errorf("text output lacks %q:\n%s", tt.verify, text.String())
			}
		})
	}
}

func want(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// TestJSONFields pins the field names `labrun pcap --json` promises.
func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	s := newSynth(t, &buf, layers.LinkTypeEthernet)
	s.query(c1, 40000, 8, name, AAAA).after(5*time.Second).query(c1, 40000, 8, name, AAAA)
	r, err := Analyze(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queries", "answers", "same_port_pairs", "resends", "unanswered", "lookups"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	rs := m["resends"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "type", "src_port", "after_ms"} {
		if _, ok := rs[k]; !ok {
			t.Errorf("resend lacks %q: %v", k, rs)
		}
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	var good bytes.Buffer
	s := newSynth(t, &good, layers.LinkTypeEthernet)
	s.query(c1, 40000, 1, name, A).answer(c1, 40000, 1, name, A, 1)
	full := good.Bytes()
	// the second record starts after the file header and the first record
	pr, err := pcapgo.NewReader(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	_, ci, err := pr.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	second := int64(pcapHeaderLen + recordHeaderLen + ci.CaptureLength)

	tests := []struct {
		name       string
		data       []byte
		wantOffset int64
		wantErr    string
	}{
		{"empty", nil, 0, "not a pcap"},
		{"text", []byte("this is not a capture at all, not even close"), 0, "not a pcap"},
		{"short header", full[:10], 0, "not a pcap"},
		{"pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0}, 0, "pcapng"},
		{"cut in a record header", full[:second+5], second, "packet record"},
		{"cut in packet data", full[:len(full)-3], second, "packet record"},
		{"unsupported link type", func() []byte {
			var b bytes.Buffer
			newSynth(t, &b, layers.LinkTypeFDDI)
			return b.Bytes()
		}(), 20, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Analyze(bytes.NewReader(tt.data), Options{})
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FormatError", err)
			}
			if fe.Offset != tt.wantOffset || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("err = %v (offset %d), want offset %d and %q", err, fe.Offset, tt.wantOffset, tt.wantErr)
			}
		})
	}
}

// FuzzAnalyze: any input gives a report or an error, never a panic.
func FuzzAnalyze(f *testing.F) {
	var buf bytes.Buffer
	s := newSynth(f, &buf, layers.LinkTypeEthernet)
	s.query(c1, 40000, 1, name, A).query(c1, 40000, 2, name, AAAA).answer(c1, 40000, 1, name, A, 1).tcp(c1, 1, server, 53)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:40])
	var sll bytes.Buffer
	newSynth(f, &sll, layers.LinkTypeLinuxSLL2)
	f.Add(sll.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Analyze(bytes.NewReader(data), Options{ListLookups: true})
		if (r == nil) == (err == nil) {
			t.Fatalf("report %v and error %v: want exactly one", r, err)
		}
		if r != nil {
			if err := WriteText(io.Discard, r); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// BenchmarkAnalyze: 100 000 packets (25 000 glibc-style lookups) per op.
// For the 1 M-packet figure of `labrun pcap`, see bench/pcapgen.
func BenchmarkAnalyze(b *testing.B) {
	const lookups = 25_000
	var buf bytes.Buffer
	s := newSynth(b, &buf, layers.LinkTypeEthernet)
	for i := 0; i < lookups; i++ {
		port, id := uint16(30000+i%30000), uint16(2*i)
		s.query(c1, port, id, name, A).after(10*time.Microsecond).query(c1, port, id+1, name, AAAA)
		s.after(100*time.Microsecond).answer(c1, port, id, name, A, 1).answer(c1, port, id+1, name, AAAA, 1).after(100 * time.Microsecond)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Analyze(bytes.NewReader(data), Options{})
		if err != nil || r.Packets != 4*lookups {
			b.Fatalf("%v, %+v", err, r)
		}
	}
	b.ReportMetric(float64(4*lookups*b.N)/b.Elapsed().Seconds(), "packets/s")
}

func TestAnalyzeGzipAndSLL2(t *testing.T) {
	var plain bytes.Buffer
	s := newSynth(t, &plain, layers.LinkTypeEthernet)
	s.query(c1, 40000, 1, name, A).query(c1, 40000, 2, name, AAAA).answer(c1, 40000, 1, name, A, 1).answer(c1, 40000, 2, name, AAAA, 1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(plain.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(&gz, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "gzipped: same port pairs", r.SamePortPairs, 1)
	want(t, "gzipped: answers", r.Answers, 2)

	// tcpdump -i any writes Linux SLL2 headers: rewrite the Ethernet frames.
	var sll bytes.Buffer
	w := pcapgo.NewWriterNanos(&sll)
	if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL2); err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewReader(bytes.NewReader(plain.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 20) // SLL2: protocol, reserved, ifindex, hatype, pkttype, addrlen, addr[8]
		hdr[0], hdr[1] = 0x08, 0x00
		hdr[9], hdr[10], hdr[11] = 1, 0, 6
		frame := append(hdr, data[14:]...)
		ci.CaptureLength, ci.Length = len(frame), len(frame)
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	r, err = Analyze(&sll, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType != "Linux SLL2" {
		t.Errorf("link type %q", r.LinkType)
	}
	want(t, "SLL2: queries", r.Queries, 2)
	want(t, "SLL2: same port pairs", r.SamePortPairs, 1)
}
