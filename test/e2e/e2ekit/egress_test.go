//go:build e2e

package e2ekit

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// packet builds an Ethernet frame of IPv4 and TCP or UDP, as the capture
// on the outward interface would hold it.
func packet(t *testing.T, src, dst string, tcp bool, dport uint16, payload []byte) gopacket.Packet {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	var l4 gopacket.SerializableLayer
	if tcp {
		ip.Protocol = layers.IPProtocolTCP
		l := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(dport), SYN: true}
		l.SetNetworkLayerForChecksum(ip)
		l4 = l
	} else {
		ip.Protocol = layers.IPProtocolUDP
		l := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(dport)}
		l.SetNetworkLayerForChecksum(ip)
		l4 = l
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return gopacket.NewPacket(buf.Bytes(), layers.LayerTypeEthernet, gopacket.Default)
}

func query(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The egress check must be able to fail: the packets seen leaving a warm
// baseline before the guard (issue 14) are the lab's, the host's own are not.
func TestEgressClassify(t *testing.T) {
	e := &Egress{resolver: []netip.Addr{netip.MustParseAddr("10.255.255.53")}}
	for _, tc := range []struct {
		name string
		p    gopacket.Packet
		lab  bool
	}{
		{"a node's TLS to the service VIP, masqueraded", packet(t, "192.0.2.10", "10.96.0.1", true, 443, nil), true},
		{"a node's packet, not masqueraded", packet(t, "172.19.0.3", "203.0.113.7", true, 443, nil), true},
		{"a pod's packet", packet(t, "10.244.1.5", "203.0.113.7", false, 123, nil), true},
		{"CoreDNS's loop check to the host's resolver", packet(t, "192.0.2.10", "10.255.255.53", false, 53, query(t, "4119291386.8102915131.", dns.TypeHINFO)), true},
		{"a lab name to the host's resolver", packet(t, "192.0.2.10", "10.255.255.53", false, 53, query(t, "api.lab.example.", dns.TypeA)), true},
		{"a cluster name to the host's resolver", packet(t, "192.0.2.10", "10.255.255.53", false, 53, query(t, "kubernetes.default.svc.cluster.local.", dns.TypeAAAA)), true},
		{"the host's own lookup", packet(t, "192.0.2.10", "10.255.255.53", false, 53, query(t, "proxy.golang.org.", dns.TypeA)), false},
		{"the host's own HTTPS", packet(t, "192.0.2.10", "203.0.113.7", true, 443, nil), false},
	} {
		if lab, what := e.classify(tc.p); lab != tc.lab {
			t.Errorf("%s: %s: lab %v, want %v", tc.name, what, lab, tc.lab)
		}
	}
}
