package nfqueue

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// kernelPacket is an NFQNL_MSG_PACKET as the kernel sends it (little-endian
// host), queue 7, packet id 0x2a, IPv4, hook PREROUTING, a timestamp, in-dev 3,
// and a 4-byte payload. Attributes: PACKET_HDR (7 bytes, padded), TIMESTAMP,
// IFINDEX_INDEV, PAYLOAD.
const kernelPacket = "" +
	"4c000000" + "0003" + "0000" + "00000000" + "00000000" + // nlmsghdr: len 76, type QUEUE<<8|PACKET
	"00" + "00" + "0007" + // nfgenmsg: AF_UNSPEC, v0, res_id 7
	"0b00" + "0100" + "0000002a" + "0800" + "00" + "00" + // NFQA_PACKET_HDR id 42, 0x0800, hook 0, pad
	"1400" + "0400" + "0000000065000000" + "00000000000003e8" + // NFQA_TIMESTAMP 0x65000000 s, 1000 µs
	"0800" + "0500" + "00000003" + // NFQA_IFINDEX_INDEV 3
	"0800" + "0a00" + "45000014" + // NFQA_PAYLOAD
	"0800" + "0d00" + "00000004" // NFQA_CAP_LEN 4

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePacketFixture(t *testing.T) {
	b := mustHex(t, kernelPacket)
	if binary.NativeEndian.Uint32(b[0:4]) != 0x4c {
		t.Skip("fixture is little-endian")
	}
	var got []Packet
	c := &Conn{}
	if err := c.dispatch(b, func(p Packet) {
		p.Payload = append([]byte(nil), p.Payload...)
		got = append(got, p)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d packets, want 1", len(got))
	}
	p := got[0]
	if p.Queue != 7 || p.ID != 42 || p.HWProto != 0x0800 || p.Hook != 0 || p.InDev != 3 {
		t.Errorf("header fields: %+v", p)
	}
	if want := time.Unix(0x65000000, 1000*1000); !p.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", p.Timestamp, want)
	}
	if !bytes.Equal(p.Payload, []byte{0x45, 0, 0, 0x14}) {
		t.Errorf("payload %x", p.Payload)
	}
}

func TestDispatchTwoMessagesAndError(t *testing.T) {
	pkt := mustHex(t, kernelPacket)
	if binary.NativeEndian.Uint32(pkt[0:4]) != 0x4c {
		t.Skip("fixture is little-endian")
	}
	// An NLMSG_ERROR carrying -ENOENT (a verdict for an unknown id) between two packets.
	errMsg := mustHex(t, "24000000"+"0200"+"0000"+"00000000"+"00000000"+"feffffff"+
		"20000000"+"0103"+"0100"+"00000000"+"00000000")
	stream := append(append(append([]byte{}, pkt...), errMsg...), pkt...)
	c := &Conn{}
	n := 0
	if err := c.dispatch(stream, func(Packet) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("packets %d, want 2", n)
	}
	if c.KernelErrors.Load() != 1 {
		t.Errorf("kernel errors %d, want 1", c.KernelErrors.Load())
	}
}

func TestParsePacketRejects(t *testing.T) {
	c := &Conn{}
	for name, s := range map[string]string{
		"length beyond datagram": "ff000000" + "0003" + "0000" + "00000000" + "00000000" + "00000007",
		"no packet header":       "1c000000" + "0003" + "0000" + "00000000" + "00000000" + "00000007" + "08000a0045000014",
		"wrong subsystem":        "1c000000" + "0001" + "0000" + "00000000" + "00000000" + "00000007" + "08000a0045000014",
	} {
		if err := c.dispatch(mustHex(t, s), func(Packet) { t.Errorf("%s: got a packet", name) }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func marshal(t *testing.T, m netlink.Message) []byte {
	t.Helper()
	m.Header.Length = uint32(16 + len(m.Data))
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerdictEncoding(t *testing.T) {
	want := "20000000" + "0103" + "0100" + "00000000" + "00000000" + // nlmsghdr: 32 bytes, QUEUE<<8|VERDICT, REQUEST
		"00" + "00" + "0007" + // nfgenmsg: queue 7
		"0c00" + "0200" + "00000001" + "0000002a" // NFQA_VERDICT_HDR accept, id 42
	got := hex.EncodeToString(appendVerdict(nil, 7, 42, Accept))
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && got != want {
		t.Errorf("appendVerdict:\n got %s\nwant %s", got, want)
	}
	// The allocation-free encoder must match the generic one, for every verdict.
	for _, v := range []Verdict{Accept, Drop} {
		a := appendVerdict(nil, 300, 0xdeadbeef, v)
		b := marshal(t, verdictMessage(300, 0xdeadbeef, v))
		if !bytes.Equal(a, b) {
			t.Errorf("%v: appendVerdict %x, verdictMessage %x", v, a, b)
		}
	}
	batch := marshal(t, verdictBatchMessage(7, 42, Drop))
	if batch[4] != msgVerdictBatch || batch[5] != 3 {
		t.Errorf("batch verdict type bytes %x", batch[4:6])
	}
}

func TestConfigEncoding(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures are little-endian")
	}
	bind := hex.EncodeToString(marshal(t, configCmdMessage(5, cmdBind)))
	wantBind := "1c000000" + "0203" + "0500" + "00000000" + "00000000" + // CONFIG, REQUEST|ACK
		"00000005" + "0800" + "0100" + "01000002" // NFQA_CFG_CMD bind, pf AF_INET
	if bind != wantBind {
		t.Errorf("bind:\n got %s\nwant %s", bind, wantBind)
	}
	params := hex.EncodeToString(marshal(t, configParamsMessage(5, 512, 1024, FlagFailOpen)))
	wantParams := "38000000" + "0203" + "0500" + "00000000" + "00000000" + "00000005" +
		"0900" + "0200" + "0000020002000000" + // NFQA_CFG_PARAMS range 512, COPY_PACKET, padded
		"0800" + "0300" + "00000400" + // NFQA_CFG_QUEUE_MAXLEN 1024
		"0800" + "0500" + "00000001" + // NFQA_CFG_FLAGS fail-open
		"0800" + "0400" + "00000001" // NFQA_CFG_MASK
	if params != wantParams {
		t.Errorf("params:\n got %s\nwant %s", params, wantParams)
	}
}

// The kernel does not pad the last message of a datagram: a 3-byte payload
// leaves the datagram one byte short of alignment.
func TestParseUnpaddedLastMessage(t *testing.T) {
	b := mustHex(t, "43000000"+"0003"+"0000"+"00000000"+"00000000"+"00000007"+
		"0b00"+"0100"+"0000002a"+"0800"+"00"+"00"+
		"1400"+"0400"+"0000000065000000"+"00000000000003e8"+
		"0800"+"0500"+"00000003"+
		"0700"+"0a00"+"450000")
	if binary.NativeEndian.Uint32(b[0:4]) != 0x43 {
		t.Skip("fixture is little-endian")
	}
	var payload []byte
	c := &Conn{}
	if err := c.dispatch(b, func(p Packet) { payload = append([]byte(nil), p.Payload...) }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, []byte{0x45, 0, 0}) {
		t.Errorf("payload %x", payload)
	}
}
