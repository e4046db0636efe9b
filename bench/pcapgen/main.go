// Command pcapgen writes a synthetic DNS capture for benchmarking `labrun
// pcap`: clients doing ndots:5 lookups of an outside name (four search-list
// candidates, A and AAAA from one source port each), with a share of AAAA
// queries lost and re-sent 5 s later, as under the conntrack race.
//
//	go run ./bench/pcapgen -packets 1000000 -o /tmp/dns-1m.pcap
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

func main() {
	packets := flag.Int("packets", 1_000_000, "packets to write (rounded up to whole lookups)")
	out := flag.String("o", "dns.pcap", "output file")
	lossEvery := flag.Int("loss-every", 100, "lose the AAAA of one lookup in this many (0: never)")
	flag.Parse()
	if err := run(*packets, *out, *lossEvery); err != nil {
		fmt.Fprintf(os.Stderr, "pcapgen: %v\n", err)
		os.Exit(1)
	}
}

type gen struct {
	w   *pcapgo.Writer
	buf gopacket.SerializeBuffer
	at  time.Time
	n   int
}

var (
	server   = net.IPv4(10, 96, 0, 10).To4()
	suffixes = []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", ""}
)

func run(packets int, path string, lossEvery int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	g := &gen{w: pcapgo.NewWriterNanos(bw), buf: gopacket.NewSerializeBuffer(), at: time.Unix(1_700_000_000, 0)}
	if err := g.w.WriteFileHeader(512, layers.LinkTypeEthernet); err != nil {
		return err
	}
	type resend struct {
		at       time.Time
		client   net.IP
		port, id uint16
		name     string
	}
	var later []resend
	for lookup := 0; g.n < packets; lookup++ {
		client := net.IPv4(10, 99, byte(lookup%50), 2).To4()
		port := uint16(30000 + lookup%30000)
		base := fmt.Sprintf("svc%d.lab.example.", lookup%1000)
		lose := lossEvery > 0 && lookup%lossEvery == 0
		for i, sfx := range suffixes {
			name := base + sfx
			if sfx == "" {
				name = base
			}
			id := uint16(lookup*8 + 2*i)
			last := i == len(suffixes)-1
			if err := g.dns(client, port, id, name, dns.TypeA, false, last); err != nil {
				return err
			}
			g.at = g.at.Add(15 * time.Microsecond)
			if err := g.dns(client, port, id+1, name, dns.TypeAAAA, false, last); err != nil {
				return err
			}
			g.at = g.at.Add(150 * time.Microsecond)
			if err := g.dns(client, port, id, name, dns.TypeA, true, last); err != nil {
				return err
			}
			if lose && last {
				later = append(later, resend{g.at.Add(5 * time.Second), client, port, id + 1, name})
			} else if err := g.dns(client, port, id+1, name, dns.TypeAAAA, true, last); err != nil {
				return err
			}
			g.at = g.at.Add(50 * time.Microsecond)
		}
		for len(later) > 0 && !later[0].at.After(g.at) {
			r := later[0]
			later = later[1:]
			if err := g.dns(r.client, r.port, r.id, r.name, dns.TypeAAAA, false, true); err != nil {
				return err
			}
			if err := g.dns(r.client, r.port, r.id, r.name, dns.TypeAAAA, true, true); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pcapgen: %d packets, %v of traffic, in %s\n", g.n, g.at.Sub(time.Unix(1_700_000_000, 0)).Round(time.Millisecond), path)
	return f.Close()
}

// dns writes one query (client → server) or answer (server → client);
// answers carry an address only for the absolute name (exists), else NXDOMAIN.
func (g *gen) dns(client net.IP, port, id uint16, name string, qtype uint16, answer, exists bool) error {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	src, dst, sport, dport := client, server, port, uint16(53)
	if answer {
		q := m
		m = new(dns.Msg)
		m.SetReply(q)
		src, dst, sport, dport = server, client, 53, port
		if !exists {
			m.Rcode = dns.RcodeNameError
		} else if qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 10)}}
		} else {
			m.Answer = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 5}, AAAA: net.ParseIP("2001:db8::10")}}
		}
	}
	payload, err := m.Pack()
	if err != nil {
		return err
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		return err
	}
	b := g.buf.Bytes()
	g.n++
	return g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.at, CaptureLength: len(b), Length: len(b)}, b)
}
