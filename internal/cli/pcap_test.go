package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestPcapCommand(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pcap")
	f, err := os.Create(empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcapgo.NewWriter(f).WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	f.Close()
	garbage := filepath.Join(dir, "garbage.pcap")
	if err := os.WriteFile(garbage, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int // 0: success
		wantOut  string
		wantErr  string
	}{
		{"text", []string{"pcap", empty}, 0, "packets 0", ""},
		{"json", []string{"pcap", empty, "--json"}, 0, `"same_port_pairs": 0`, ""},
		{"missing file", []string{"pcap", filepath.Join(dir, "none.pcap")}, 2, "", "no such file"},
		{"not a pcap", []string{"pcap", garbage}, 2, "", "offset"},
		{"no file", []string{"pcap"}, 2, "", "accepts 1 arg"},
		{"bad window", []string{"pcap", empty, "--pair-window", "-1ms"}, 2, "", "must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, tt.args)
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), tt.wantOut) {
					t.Fatalf("output %q lacks %q", out.String(), tt.wantOut)
				}
				if strings.Contains(tt.name, "json") && !json.Valid(out.Bytes()) {
					t.Fatalf("not JSON: %s", out.String())
				}
				return
			}
			if err == nil || ExitCode(context.Background(), err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v (exit %d), want exit %d and %q", err, ExitCode(context.Background(), err), tt.wantCode, tt.wantErr)
			}
		})
	}
}
