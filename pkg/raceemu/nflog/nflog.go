// Package nflog receives packet copies from the iptables NFLOG target over the
// kernel's nfnetlink_log protocol. Unlike a queue, NFLOG never holds a packet:
// the copy goes to user space while the packet continues, so an observer
// built on it cannot change what conntrack does. Constants are those of
// linux/netfilter/nfnetlink_log.h.
package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

const (
	msgPacket = 0 // NFULNL_MSG_PACKET
	msgConfig = 1 // NFULNL_MSG_CONFIG

	attrPacketHdr = 1 // NFULA_PACKET_HDR
	attrTimestamp = 3 // NFULA_TIMESTAMP
	attrInDev     = 4 // NFULA_IFINDEX_INDEV
	attrPayload   = 9 // NFULA_PAYLOAD

	cfgCmd     = 1 // NFULA_CFG_CMD
	cfgMode    = 2 // NFULA_CFG_MODE
	cfgQThresh = 5 // NFULA_CFG_QTHRESH

	cmdBind    = 1 // NFULNL_CFG_CMD_BIND
	copyPacket = 2 // NFULNL_COPY_PACKET
)

// Packet is one logged packet.
type Packet struct {
	Group     uint16
	HWProto   uint16
	Hook      uint8
	Timestamp time.Time // zero when the kernel had no receive stamp
	InDev     uint32
	Payload   []byte // the L3 packet, up to the copy range
}

// Conn is a netlink socket bound to one NFLOG group.
type Conn struct {
	nl  *netlink.Conn
	fd  int
	buf []byte
	// Overruns counts ENOBUFS: the kernel could not deliver some copies
	// (the packets themselves were not affected).
	Overruns atomic.Uint64
}

// Open binds group on a new socket in the calling thread's network namespace,
// asking for copyRange bytes of each packet, one netlink message per packet
// (no batching, so copies arrive as the packets pass), and blocking reads that
// wake up every poll interval (Receive then returns ErrTimeout).
func Open(group uint16, copyRange uint32, readBuffer int, poll time.Duration) (*Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("dial netfilter netlink: %w", err)
	}
	c := &Conn{nl: nl, buf: make([]byte, 1<<16)}
	fail := func(what string, err error) (*Conn, error) {
		nl.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if readBuffer > 0 {
		if err := nl.SetReadBuffer(readBuffer); err != nil {
			return fail("set netlink read buffer", err)
		}
	}
	if _, err := nl.Execute(configMessage(group, []netfilter.Attribute{{Type: cfgCmd, Data: []byte{cmdBind}}})); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fail(fmt.Sprintf("bind nflog group %d: another process holds it", group), err)
		}
		return fail(fmt.Sprintf("bind nflog group %d", group), err)
	}
	if _, err := nl.Execute(configMessage(group, modeAttrs(copyRange))); err != nil {
		return fail(fmt.Sprintf("configure nflog group %d", group), err)
	}
	raw, err := nl.SyscallConn()
	if err != nil {
		return fail("netlink raw conn", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if serr = unix.SetNonblock(int(fd), false); serr != nil {
			return
		}
		tv := unix.NsecToTimeval(poll.Nanoseconds())
		serr = unix.SetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		c.fd = int(fd)
	}); err != nil || serr != nil {
		return fail("blocking reads", errors.Join(err, serr))
	}
	return c, nil
}

func modeAttrs(copyRange uint32) []netfilter.Attribute {
	// struct nfulnl_msg_config_mode { __be32 copy_range; __u8 copy_mode; __u8 _pad; } packed
	mode := make([]byte, 6)
	binary.BigEndian.PutUint32(mode[0:4], copyRange)
	mode[4] = copyPacket
	return []netfilter.Attribute{
		{Type: cfgMode, Data: mode},
		{Type: cfgQThresh, Data: netfilter.Uint32Bytes(1)},
	}
}

func configMessage(group uint16, attrs []netfilter.Attribute) netlink.Message {
	m, _ := netfilter.MarshalNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysULOG,
		MessageType: msgConfig,
		Family:      netfilter.ProtoUnspec,
		ResourceID:  group,
		Flags:       netlink.Request | netlink.Acknowledge,
	}, attrs)
	return m
}

// Close closes the socket; the kernel unbinds the group.
func (c *Conn) Close() error { return c.nl.Close() }

// ErrTimeout is returned by Receive when no packet came within the poll interval.
var ErrTimeout = errors.New("no packet within the poll interval")

// Receive blocks until a datagram arrives and calls fn for each packet in it.
// p.Payload is only valid during fn. Not safe for concurrent use.
func (c *Conn) Receive(fn func(Packet)) error {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return ErrTimeout
		case errors.Is(err, unix.ENOBUFS):
			c.Overruns.Add(1)
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("receive from netlink: %w", err)
		}
		return dispatch(c.buf[:n], fn)
	}
}

// dispatch walks the netlink messages of one datagram (the kernel may batch
// several packets in one, NLM_F_MULTI, ended by NLMSG_DONE).
func dispatch(b []byte, fn func(Packet)) error {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return fmt.Errorf("netlink message length %d out of range (%d bytes left)", l, len(b))
		}
		typ := netlink.HeaderType(binary.NativeEndian.Uint16(b[4:6]))
		if typ != netlink.Error && typ != netlink.Done && typ != netlink.Noop {
			p, err := parsePacket(netlink.Message{Header: netlink.Header{Type: typ, Length: uint32(l)}, Data: b[unix.NLMSG_HDRLEN:l]})
			if err != nil {
				return err
			}
			fn(p)
		}
		next := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return nil
}

func parsePacket(m netlink.Message) (Packet, error) {
	h, ad, err := netfilter.DecodeNetlink(m)
	if err != nil {
		return Packet{}, fmt.Errorf("decode nflog message: %w", err)
	}
	if h.SubsystemID != netfilter.NFSubsysULOG || h.MessageType != msgPacket {
		return Packet{}, fmt.Errorf("not a logged packet: %v", h)
	}
	p := Packet{Group: h.ResourceID}
	gotHdr := false
	for ad.Next() {
		b := ad.Bytes()
		switch ad.Type() {
		case attrPacketHdr:
			// struct nfulnl_msg_packet_hdr { __be16 hw_protocol; __u8 hook; __u8 _pad; }
			if len(b) < 3 {
				return Packet{}, fmt.Errorf("short NFULA_PACKET_HDR: %d bytes", len(b))
			}
			p.HWProto = binary.BigEndian.Uint16(b[0:2])
			p.Hook = b[2]
			gotHdr = true
		case attrTimestamp:
			// struct nfulnl_msg_packet_timestamp { __aligned_be64 sec; __aligned_be64 usec; }
			if len(b) >= 16 {
				p.Timestamp = time.Unix(int64(binary.BigEndian.Uint64(b[0:8])), int64(binary.BigEndian.Uint64(b[8:16]))*1000)
			}
		case attrInDev:
			p.InDev = ad.Uint32()
		case attrPayload:
			p.Payload = b
		}
	}
	if err := ad.Err(); err != nil {
		return Packet{}, fmt.Errorf("decode nflog attributes: %w", err)
	}
	if !gotHdr {
		return Packet{}, errors.New("nflog packet without NFULA_PACKET_HDR")
	}
	return p, nil
}
