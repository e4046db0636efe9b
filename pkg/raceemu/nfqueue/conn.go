package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Options configure the bound queues.
type Options struct {
	CopyRange  uint32 // bytes of each packet copied to user space
	MaxLen     uint32 // packets the kernel keeps queued before it fails open (or drops)
	FailOpen   bool   // accept, rather than drop, what cannot be queued
	ReadBuffer int    // socket receive buffer in bytes; 0 keeps the default
}

// Conn is a netlink socket bound to one or more NFQUEUE queues.
//
// The hot path reads and writes the socket directly: mdlayher/netlink's
// Receive holds a lock that would block a concurrent Send (verdicts of
// delayed packets come from timers while the reader waits), and verdicts must
// leave from the socket that is bound to the queue.
type Conn struct {
	nl  *netlink.Conn
	raw syscall.RawConn
	buf []byte

	blocking bool // see UseBlockingReads
	fd       int

	// Overruns counts ENOBUFS on receive: the kernel could not deliver some
	// packets to this socket (with FailOpen it accepted them).
	Overruns atomic.Uint64
	// KernelErrors counts error messages the kernel sent back (e.g. a verdict
	// for an unknown packet id).
	KernelErrors atomic.Uint64
}

// Open binds the given queues on a new netlink socket in the calling
// thread's network namespace.
func Open(queues []uint16, o Options) (*Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("dial netfilter netlink: %w", err)
	}
	c := &Conn{nl: nl, buf: make([]byte, 1<<16)}
	if o.ReadBuffer > 0 {
		if err := nl.SetReadBuffer(o.ReadBuffer); err != nil {
			nl.Close()
			return nil, fmt.Errorf("set netlink read buffer: %w", err)
		}
	}
	var flags uint32
	if o.FailOpen {
		flags |= FlagFailOpen
	}
	for _, q := range queues {
		if _, err := nl.Execute(configCmdMessage(q, cmdBind)); err != nil {
			nl.Close()
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("bind queue %d: another process holds it: %w", q, err)
			}
			return nil, fmt.Errorf("bind queue %d: %w", q, err)
		}
		if _, err := nl.Execute(configParamsMessage(q, o.CopyRange, o.MaxLen, flags)); err != nil {
			nl.Close()
			return nil, fmt.Errorf("configure queue %d: %w", q, err)
		}
	}
	raw, err := nl.SyscallConn()
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("netlink raw conn: %w", err)
	}
	c.raw = raw
	return c, nil
}

// UseBlockingReads switches Receive to blocking system calls on the calling
// goroutine's own thread, skipping the runtime's poller: one wake-up less per
// packet. The socket then wakes up every poll interval so that Receive can
// return ErrTimeout and the caller can check whether to stop.
func (c *Conn) UseBlockingReads(poll time.Duration) error {
	var serr error
	err := c.raw.Control(func(fd uintptr) {
		if serr = unix.SetNonblock(int(fd), false); serr != nil {
			return
		}
		tv := unix.NsecToTimeval(poll.Nanoseconds())
		serr = unix.SetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		c.fd = int(fd)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("blocking reads: %w", err)
	}
	c.blocking = true
	return nil
}

// ErrTimeout is returned by a blocking Receive that saw no packet within the
// poll interval.
var ErrTimeout = errors.New("no packet within the poll interval")

func (c *Conn) receiveBlocking(fn func(Packet)) error {
	for n := 0; n < maxBurst; n++ {
		flags := 0
		if n > 0 {
			flags = unix.MSG_DONTWAIT
		}
		m, _, err := unix.Recvfrom(c.fd, c.buf, flags)
		switch {
		case errors.Is(err, unix.EAGAIN) && n == 0:
			return ErrTimeout
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.ENOBUFS):
			c.Overruns.Add(1)
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("receive from netlink: %w", err)
		}
		if err := c.dispatch(c.buf[:m], fn); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the socket; the kernel unbinds its queues and drops packets
// still waiting for a verdict, so give them one first.
func (c *Conn) Close() error { return c.nl.Close() }

// maxBurst bounds how many datagrams one Receive reads before returning, so
// verdicts of a burst leave together without starving the writer.
const maxBurst = 64

// Receive waits for at least one queued packet and calls fn for each packet
// that is ready, up to a burst. p.Payload is only valid during fn.
func (c *Conn) Receive(fn func(p Packet)) error {
	if c.blocking {
		return c.receiveBlocking(fn)
	}
	var handleErr error
	n := 0
	err := c.raw.Read(func(fd uintptr) bool {
		for n < maxBurst {
			m, _, err := unix.Recvfrom(int(fd), c.buf, unix.MSG_DONTWAIT)
			switch {
			case errors.Is(err, unix.EAGAIN):
				return n > 0 // false: wait for readiness
			case errors.Is(err, unix.ENOBUFS):
				c.Overruns.Add(1)
				continue
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				handleErr = fmt.Errorf("receive from netlink: %w", err)
				return true
			}
			n++
			if err := c.dispatch(c.buf[:m], fn); err != nil {
				handleErr = err
				return true
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("receive from netlink: %w", err)
	}
	return handleErr
}

// dispatch walks the netlink messages of one datagram.
func (c *Conn) dispatch(b []byte, fn func(Packet)) error {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return fmt.Errorf("netlink message length %d out of range (%d bytes left)", l, len(b))
		}
		// Built by hand: the kernel does not pad the last message of a
		// datagram, which netlink.Message.UnmarshalBinary rejects.
		m := netlink.Message{
			Header: netlink.Header{
				Length:   uint32(l),
				Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:6])),
				Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:8])),
				Sequence: binary.NativeEndian.Uint32(b[8:12]),
				PID:      binary.NativeEndian.Uint32(b[12:16]),
			},
			Data: b[unix.NLMSG_HDRLEN:l],
		}
		switch m.Header.Type {
		case netlink.Error:
			if len(m.Data) >= 4 && int32(binary.NativeEndian.Uint32(m.Data[0:4])) != 0 {
				c.KernelErrors.Add(1)
			}
		case netlink.Noop, netlink.Done:
		default:
			p, err := parsePacket(m)
			if err != nil {
				return err
			}
			fn(p)
		}
		b = b[alignedLen(l, len(b)):]
	}
	return nil
}

// alignedLen is l rounded up to netlink's 4-byte alignment, capped at max.
func alignedLen(l, max int) int {
	a := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
	if a > max {
		return max
	}
	return a
}

// VerdictFor names a packet and its verdict.
type VerdictFor struct {
	Queue   uint16
	ID      uint32
	Verdict Verdict
}

// SetVerdicts sends verdicts for several packets in one datagram; the kernel
// applies them in order. Safe to call concurrently with Receive.
func (c *Conn) SetVerdicts(vs []VerdictFor) error {
	if len(vs) == 0 {
		return nil
	}
	b := make([]byte, 0, len(vs)*verdictLen)
	for _, v := range vs {
		b = appendVerdict(b, v.Queue, v.ID, v.Verdict)
	}
	return c.write(b)
}

// SetVerdict sends the verdict for one packet.
func (c *Conn) SetVerdict(q uint16, id uint32, v Verdict) error {
	var a [verdictLen]byte
	return c.write(appendVerdict(a[:0], q, id, v))
}

func (c *Conn) write(b []byte) error {
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(werr, unix.EAGAIN)
	})
	if err != nil {
		return fmt.Errorf("send verdict: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("send verdict: %w", werr)
	}
	return nil
}

// verdictLen is the size of one encoded verdict message: nlmsghdr (16),
// nfgenmsg (4), one attribute header (4) and nfqnl_msg_verdict_hdr (8).
const verdictLen = 32

// appendVerdict encodes NFQNL_MSG_VERDICT without allocating; it must equal
// verdictMessage's encoding (tested).
func appendVerdict(b []byte, q uint16, id uint32, v Verdict) []byte {
	var m [verdictLen]byte
	binary.NativeEndian.PutUint32(m[0:4], verdictLen)
	binary.NativeEndian.PutUint16(m[4:6], uint16(3)<<8|msgVerdict) // NFNL_SUBSYS_QUEUE<<8 | type
	binary.NativeEndian.PutUint16(m[6:8], uint16(netlink.Request))
	// seq and pid stay 0: the kernel fills in the sender's port id.
	m[16] = unix.AF_UNSPEC
	m[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(m[18:20], q)
	binary.NativeEndian.PutUint16(m[20:22], 12) // nla_len
	binary.NativeEndian.PutUint16(m[22:24], attrVerdictHdr)
	binary.BigEndian.PutUint32(m[24:28], uint32(v))
	binary.BigEndian.PutUint32(m[28:32], id)
	return append(b, m[:]...)
}

// SetReadDeadline makes a waiting or later Receive return once t passes;
// the agent uses it to stop.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nl.SetReadDeadline(t) }
