package collect

import (
	"os"
	"slices"
	"testing"
)

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		line    string
		want    uint64
		wantErr bool
	}{
		{"1 (systemd) S 0 1 1 0 -1 4194560 29453 1418764 90 1201 52 91 3067 2164 20 0 1 0 1734 23330816 3062 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0", 1734, false},
		// A command name with spaces and a ')' of its own.
		{"42 (my (odd) name) R 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 98765, false},
		{"1 (systemd) S 0 1", 0, true},
		{"no parentheses here", 0, true},
		{"1 (x) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 soon 0 0", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseStartTime(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseStartTime(%q) = %d, %v; want %d (error: %v)", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
	// This machine's own init parses.
	if b, err := os.ReadFile("/proc/1/stat"); err == nil {
		if _, err := ParseStartTime(string(b)); err != nil {
			t.Errorf("/proc/1/stat of this machine: %v", err)
		}
	}
}

func TestRestarted(t *testing.T) {
	before := Snapshot{Started: map[string]uint64{"w1": 100, "w2": 200, "cp": 50}}
	after := Snapshot{Started: map[string]uint64{"w1": 100, "w2": 9000, "cp": 60}}
	if got := Restarted(before, after); !slices.Equal(got, []string{"cp", "w2"}) {
		t.Errorf("Restarted = %v, want [cp w2]", got)
	}
	// A node missing from a snapshot (its read failed) is not called restarted.
	if got := Restarted(before, Snapshot{Started: map[string]uint64{"w1": 100}}); len(got) != 0 {
		t.Errorf("Restarted = %v, want none", got)
	}
}
