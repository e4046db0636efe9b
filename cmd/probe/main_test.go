package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputWritesNothing: every kind of bad input is a usage error (exit
// 2) with a message naming the problem, and stdout stays empty.
func TestBadInputWritesNothing(t *testing.T) {
	rc := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(rc, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"unknown back end", []string{"--backend", "bind", "--names", "a.b", "--resolv-conf", rc}, nil, "unknown back end"},
		{"malformed name", []string{"--names", "a..b", "--resolv-conf", rc}, nil, "not a valid domain name"},
		{"unreadable resolv.conf", []string{"--names", "a.b", "--resolv-conf", rc + ".missing"}, nil, "resolv.conf"},
		{"bad env", []string{"--names", "a.b", "--resolv-conf", rc}, map[string]string{"PROBE_RATE": "lots"}, "PROBE_RATE"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"stray argument", []string{"--names", "a.b", "--resolv-conf", rc, "extra"}, nil, "unexpected arguments"},
		{"libc of the other build", []string{"--backend", otherLibc(), "--names", "a.b", "--resolv-conf", rc}, nil, "not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			var u usageError
			if !errors.As(err, &u) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout has %q", stdout.String())
			}
		})
	}
}

func TestRunWritesSamplesAndSummary(t *testing.T) {
	rc := filepath.Join(t.TempDir(), "resolv.conf")
	// An address literal is answered without any lookup: no packet is sent.
	if err := os.WriteFile(rc, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--backend", "go", "--names", "127.0.0.1", "--count", "2", "--rate", "0", "--resolv-conf", rc},
		func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], `"type":"summary"`) || !strings.Contains(lines[2], `"lookups":2`) {
		t.Fatalf("output:\n%s", stdout.String())
	}
}

func otherLibc() string {
	if probeLibc := libcOrNone(); probeLibc == "musl" {
		return "glibc"
	}
	return "musl"
}
