package raceemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Packet is what the agent needs from a queued L3 packet.
type Packet struct {
	Tuple Tuple
	// L4Payload is the UDP payload (the DNS message); empty for TCP.
	L4Payload []byte
}

var errShort = errors.New("packet too short")

// ParsePacket reads the 5-tuple of an IPv4 or IPv6 packet carrying UDP or TCP.
// IPv6 extension headers are not walked: DNS queries carry none.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) < 1 {
		return Packet{}, errShort
	}
	var (
		proto    uint8
		src, dst netip.Addr
		l4       []byte
	)
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Packet{}, fmt.Errorf("ipv4 header: %w", errShort)
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return Packet{}, fmt.Errorf("ipv4 header length %d: %w", ihl, errShort)
		}
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return Packet{}, errors.New("ipv4 fragment without transport header")
		}
		proto = b[9]
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return Packet{}, fmt.Errorf("ipv6 header: %w", errShort)
		}
		proto = b[6]
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return Packet{}, fmt.Errorf("ip version %d", b[0]>>4)
	}
	if proto != protoUDP && proto != protoTCP {
		return Packet{}, fmt.Errorf("ip protocol %d is neither udp nor tcp", proto)
	}
	if len(l4) < 4 {
		return Packet{}, fmt.Errorf("transport ports: %w", errShort)
	}
	p := Packet{Tuple: Tuple{
		Proto: proto,
		Src:   netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2])),
		Dst:   netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4])),
	}}
	if proto == protoUDP && len(l4) >= 8 {
		p.L4Payload = l4[8:]
	}
	return p, nil
}

// DNS query types the agent tells apart.
const (
	TypeA    = 1
	TypeAAAA = 28
)

// QueryType returns the QTYPE of the first question of a DNS message, or
// false when msg is not a query with a readable question.
func QueryType(msg []byte) (uint16, bool) {
	// Header: 12 bytes; flags bit 15 (QR) is 0 for a query; QDCOUNT ≥ 1.
	if len(msg) < 12 || msg[2]&0x80 != 0 || binary.BigEndian.Uint16(msg[4:6]) == 0 {
		return 0, false
	}
	i := 12
	for {
		if i >= len(msg) {
			return 0, false
		}
		l := int(msg[i])
		if l == 0 {
			i++
			break
		}
		if l&0xc0 != 0 { // compression pointers do not occur in a query's first name
			return 0, false
		}
		i += 1 + l
	}
	if i+2 > len(msg) {
		return 0, false
	}
	return binary.BigEndian.Uint16(msg[i : i+2]), true
}
