// Package nfqueue speaks the kernel's nfnetlink_queue protocol (the iptables
// NFQUEUE target) over a netlink socket: bind a queue, receive packets, send
// verdicts. No Go binding of it is available here, and the protocol is small:
// the constants below are those of linux/netfilter/nfnetlink_queue.h.
package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/netfilter"
)

// Message types of the queue subsystem.
const (
	msgPacket       = 0 // NFQNL_MSG_PACKET: kernel → user
	msgVerdict      = 1 // NFQNL_MSG_VERDICT
	msgConfig       = 2 // NFQNL_MSG_CONFIG
	msgVerdictBatch = 3 // NFQNL_MSG_VERDICT_BATCH
)

// Attributes of a packet or verdict message (NFQA_*).
const (
	attrPacketHdr  = 1  // NFQA_PACKET_HDR
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR
	attrMark       = 3  // NFQA_MARK
	attrTimestamp  = 4  // NFQA_TIMESTAMP
	attrInDev      = 5  // NFQA_IFINDEX_INDEV
	attrOutDev     = 6  // NFQA_IFINDEX_OUTDEV
	attrPayload    = 10 // NFQA_PAYLOAD
	attrCapLen     = 13 // NFQA_CAP_LEN
)

// Attributes of a config message (NFQA_CFG_*).
const (
	cfgCmd         = 1 // NFQA_CFG_CMD
	cfgParams      = 2 // NFQA_CFG_PARAMS
	cfgQueueMaxLen = 3 // NFQA_CFG_QUEUE_MAXLEN
	cfgMask        = 4 // NFQA_CFG_MASK
	cfgFlags       = 5 // NFQA_CFG_FLAGS
)

// Config commands (NFQNL_CFG_CMD_*).
const (
	cmdBind   = 1
	cmdUnbind = 2
)

// copyPacket asks the kernel to copy packet bytes (NFQNL_COPY_PACKET).
const copyPacket = 2

// FlagFailOpen (NFQA_CFG_F_FAIL_OPEN) makes the kernel accept packets it
// cannot queue (queue full, socket buffer full) instead of dropping them.
const FlagFailOpen = 1

// Verdict is what the kernel does with a queued packet.
type Verdict uint32

// Verdicts (NF_DROP, NF_ACCEPT).
const (
	Drop   Verdict = 0
	Accept Verdict = 1
)

func (v Verdict) String() string {
	switch v {
	case Drop:
		return "drop"
	case Accept:
		return "accept"
	}
	return fmt.Sprintf("verdict(%d)", uint32(v))
}

// Packet is one packet the kernel queued to user space.
type Packet struct {
	Queue     uint16
	ID        uint32 // the kernel's packet id, echoed in the verdict
	HWProto   uint16 // ethertype: 0x0800 IPv4, 0x86dd IPv6
	Hook      uint8  // netfilter hook: 0 PREROUTING, 3 OUTPUT, ...
	Timestamp time.Time
	InDev     uint32
	OutDev    uint32
	Mark      uint32
	Payload   []byte // the L3 packet (IP header first), up to the copy range
}

var errNoPacketHdr = errors.New("packet message without NFQA_PACKET_HDR")

// parsePacket decodes one NFQNL_MSG_PACKET message. Payload aliases m.Data.
func parsePacket(m netlink.Message) (Packet, error) {
	h, ad, err := netfilter.DecodeNetlink(m)
	if err != nil {
		return Packet{}, fmt.Errorf("decode packet message: %w", err)
	}
	if h.SubsystemID != netfilter.NFSubsysQueue || h.MessageType != msgPacket {
		return Packet{}, fmt.Errorf("not a queued packet: %v", h)
	}
	p := Packet{Queue: h.ResourceID}
	gotHdr := false
	for ad.Next() {
		b := ad.Bytes()
		switch ad.Type() {
		case attrPacketHdr:
			// struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; } packed
			if len(b) < 7 {
				return Packet{}, fmt.Errorf("short NFQA_PACKET_HDR: %d bytes", len(b))
			}
			p.ID = binary.BigEndian.Uint32(b[0:4])
			p.HWProto = binary.BigEndian.Uint16(b[4:6])
			p.Hook = b[6]
			gotHdr = true
		case attrTimestamp:
			// struct nfqnl_msg_packet_timestamp { __be64 sec; __be64 usec; }
			if len(b) >= 16 {
				sec := int64(binary.BigEndian.Uint64(b[0:8]))
				usec := int64(binary.BigEndian.Uint64(b[8:16]))
				p.Timestamp = time.Unix(sec, usec*1000)
			}
		case attrInDev:
			p.InDev = ad.Uint32()
		case attrOutDev:
			p.OutDev = ad.Uint32()
		case attrMark:
			p.Mark = ad.Uint32()
		case attrPayload:
			p.Payload = b
		}
	}
	if err := ad.Err(); err != nil {
		return Packet{}, fmt.Errorf("decode packet attributes: %w", err)
	}
	if !gotHdr {
		return Packet{}, errNoPacketHdr
	}
	return p, nil
}

// header returns the netfilter header of a queue message for queue q.
func header(typ netfilter.MessageType, q uint16, flags netlink.HeaderFlags) netfilter.Header {
	return netfilter.Header{
		SubsystemID: netfilter.NFSubsysQueue,
		MessageType: typ,
		Family:      netfilter.ProtoUnspec,
		Version:     0, // NFNETLINK_V0
		ResourceID:  q,
		Flags:       flags,
	}
}

// verdictMessage encodes NFQNL_MSG_VERDICT for one packet.
func verdictMessage(q uint16, id uint32, v Verdict) netlink.Message {
	return verdictMsg(msgVerdict, q, id, v)
}

// verdictBatchMessage encodes NFQNL_MSG_VERDICT_BATCH: v applies to every
// queued packet of q whose id is ≤ id.
func verdictBatchMessage(q uint16, id uint32, v Verdict) netlink.Message {
	return verdictMsg(msgVerdictBatch, q, id, v)
}

func verdictMsg(typ netfilter.MessageType, q uint16, id uint32, v Verdict) netlink.Message {
	// struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint32(hdr[0:4], uint32(v))
	binary.BigEndian.PutUint32(hdr[4:8], id)
	m, _ := netfilter.MarshalNetlink(header(typ, q, netlink.Request), []netfilter.Attribute{{Type: attrVerdictHdr, Data: hdr}})
	return m
}

// configCmdMessage encodes NFQNL_MSG_CONFIG with NFQA_CFG_CMD (bind/unbind).
func configCmdMessage(q uint16, cmd uint8) netlink.Message {
	// struct nfqnl_msg_config_cmd { __u8 command; __u8 _pad; __be16 pf; }
	// pf is ignored since Linux 3.8; AF_INET keeps old kernels content.
	b := []byte{cmd, 0, 0, 2}
	m, _ := netfilter.MarshalNetlink(header(msgConfig, q, netlink.Request|netlink.Acknowledge),
		[]netfilter.Attribute{{Type: cfgCmd, Data: b}})
	return m
}

// configParamsMessage encodes NFQNL_MSG_CONFIG asking for copyRange bytes of
// each packet, a queue length limit and the given flags (e.g. FlagFailOpen).
func configParamsMessage(q uint16, copyRange, maxLen, flags uint32) netlink.Message {
	// struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; } packed
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params[0:4], copyRange)
	params[4] = copyPacket
	attrs := []netfilter.Attribute{
		{Type: cfgParams, Data: params},
		{Type: cfgQueueMaxLen, Data: netfilter.Uint32Bytes(maxLen)},
		// The mask says which flags this message sets; flags outside it keep their value.
		{Type: cfgFlags, Data: netfilter.Uint32Bytes(flags)},
		{Type: cfgMask, Data: netfilter.Uint32Bytes(flags | FlagFailOpen)},
	}
	m, _ := netfilter.MarshalNetlink(header(msgConfig, q, netlink.Request|netlink.Acknowledge), attrs)
	return m
}
