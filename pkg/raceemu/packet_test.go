package raceemu

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// query is a DNS query for "a.lab." of type qtype, id 0x1234, RD set.
func query(qtype uint16) []byte {
	return []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		1, 'a', 3, 'l', 'a', 'b', 0, byte(qtype >> 8), byte(qtype), 0, 1}
}

func udp4(payload []byte) []byte {
	b, _ := hex.DecodeString("45000000" + "00004000" + "4011" + "0000" + // v4, DF, ttl 64, udp
		"0af40105" + "0a60000a" + // 10.244.1.5 → 10.96.0.10
		"9c40" + "0035" + "0000" + "0000") // 40000 → 53
	return append(b, payload...)
}

func TestParsePacket(t *testing.T) {
	p, err := ParsePacket(udp4(query(TypeAAAA)))
	if err != nil {
		t.Fatal(err)
	}
	want := Tuple{Proto: protoUDP, Src: netip.MustParseAddrPort("10.244.1.5:40000"), Dst: netip.MustParseAddrPort("10.96.0.10:53")}
	if p.Tuple != want {
		t.Errorf("tuple %+v, want %+v", p.Tuple, want)
	}
	if qt, ok := QueryType(p.L4Payload); !ok || qt != TypeAAAA {
		t.Errorf("query type %d %v, want AAAA", qt, ok)
	}

	v6, _ := hex.DecodeString("60000000" + "0008" + "11" + "40" +
		"fd000000000000000000000000000001" + "fd000000000000000000000000000053" + "d4310035" + "00080000")
	p, err = ParsePacket(v6)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tuple.Src != netip.MustParseAddrPort("[fd00::1]:54321") || p.Tuple.Dst != netip.MustParseAddrPort("[fd00::53]:53") {
		t.Errorf("ipv6 tuple %+v", p.Tuple)
	}

	tcp := udp4(nil)
	tcp[9] = protoTCP
	if p, err := ParsePacket(tcp); err != nil || p.Tuple.Proto != protoTCP || p.L4Payload != nil {
		t.Errorf("tcp: %+v, %v", p, err)
	}

	for name, b := range map[string][]byte{
		"empty":        nil,
		"short ipv4":   udp4(nil)[:19],
		"icmp":         func() []byte { b := udp4(nil); b[9] = 1; return b }(),
		"fragment":     func() []byte { b := udp4(nil); b[7] = 8; return b }(),
		"ip version 5": {0x50},
	} {
		if _, err := ParsePacket(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestQueryType(t *testing.T) {
	if qt, ok := QueryType(query(TypeA)); !ok || qt != TypeA {
		t.Errorf("A: %d %v", qt, ok)
	}
	resp := query(TypeAAAA)
	resp[2] |= 0x80
	for name, msg := range map[string][]byte{
		"response":    resp,
		"truncated":   query(TypeA)[:15],
		"no question": append(query(TypeA)[:4], 0, 0, 0, 0, 0, 0, 0, 0),
		"pointer":     append(append(query(TypeA)[:12], 0xc0, 0x0c), 0, 1, 0, 1),
	} {
		if qt, ok := QueryType(msg); ok {
			t.Errorf("%s: got type %d", name, qt)
		}
	}
}
