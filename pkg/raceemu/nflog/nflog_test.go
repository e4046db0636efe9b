package nflog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// A batch of two NFULNL_MSG_PACKET messages (NLM_F_MULTI) for group 5 and
// NLMSG_DONE, as the kernel sends it on a little-endian host.
func TestDispatchFixture(t *testing.T) {
	if !littleEndian() {
		t.Skip("fixture is little-endian")
	}
	pkt := "40000000" + "0004" + "0200" + "00000000" + "00000000" + // len 64, ULOG<<8|PACKET, NLM_F_MULTI
		"02" + "00" + "0005" + // nfgenmsg: AF_INET, v0, group 5
		"0800" + "0100" + "0800" + "00" + "00" + // NFULA_PACKET_HDR: 0x0800, hook 0
		"1400" + "0300" + "0000000065000000" + "00000000000001f4" + // NFULA_TIMESTAMP: 0x65000000 s, 500 µs
		"0800" + "0400" + "00000007" + // NFULA_IFINDEX_INDEV 7
		"0800" + "0900" + "45000014" // NFULA_PAYLOAD
	done := "14000000" + "0300" + "0200" + "00000000" + "00000000" + "00000000"
	var got []Packet
	if err := dispatch(mustHex(t, pkt+pkt+done), func(p Packet) {
		p.Payload = append([]byte(nil), p.Payload...)
		got = append(got, p)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d packets, want 2", len(got))
	}
	p := got[1]
	if p.Group != 5 || p.HWProto != 0x0800 || p.Hook != 0 || p.InDev != 7 || !bytes.Equal(p.Payload, []byte{0x45, 0, 0, 0x14}) {
		t.Errorf("packet %+v", p)
	}
	if want := time.Unix(0x65000000, 500*1000); !p.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", p.Timestamp, want)
	}
	if err := dispatch(mustHex(t, "ff000000"+"0004"+"0000"+"00000000"+"00000000"+"00000005"), func(Packet) {}); err == nil {
		t.Error("length beyond the datagram accepted")
	}
	noHdr := "1c000000" + "0004" + "0000" + "00000000" + "00000000" + "00000005" + "08000900" + "45000014"
	if err := dispatch(mustHex(t, noHdr), func(Packet) {}); err == nil {
		t.Error("packet without header accepted")
	}
}

func TestConfigEncoding(t *testing.T) {
	if !littleEndian() {
		t.Skip("fixtures are little-endian")
	}
	marshal := func(m netlink.Message) string {
		m.Header.Length = uint32(16 + len(m.Data))
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	got := marshal(configMessage(5, modeAttrs(512)))
	want := "28000000" + "0104" + "0500" + "00000000" + "00000000" + // len 40, ULOG<<8|CONFIG, REQUEST|ACK
		"00000005" +
		"0a00" + "0200" + "000002000200" + "0000" + // NFULA_CFG_MODE: range 512, COPY_PACKET, pad
		"0800" + "0500" + "00000001" // NFULA_CFG_QTHRESH 1
	if got != want {
		t.Errorf("mode:\n got %s\nwant %s", got, want)
	}
}
