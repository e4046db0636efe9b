package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseArgs(t *testing.T) {
	cases := []struct {
		args                 []string
		cmd, bundle, process string
	}{
		{[]string{"--root", "/run/runc", "--log", "/l", "create", "--bundle", "/b", "id"}, "create", "/b", ""},
		{[]string{"create", "-b", "/b", "--pid-file", "/p", "id"}, "create", "/b", ""},
		{[]string{"--root=/r", "run", "--bundle=/b2", "id"}, "run", "/b2", ""},
		{[]string{"--root", "/r", "exec", "--process", "/proc.json", "--detach", "id"}, "exec", "", "/proc.json"},
		{[]string{"exec", "-p", "/p.json", "id"}, "exec", "", "/p.json"},
		{[]string{"--root", "/r", "state", "id"}, "state", "", ""},
	}
	for _, c := range cases {
		cmd, bundle, process := parseArgs(c.args)
		if cmd != c.cmd || bundle != c.bundle || process != c.process {
			t.Errorf("parseArgs(%q) = %q %q %q, want %q %q %q", c.args, cmd, bundle, process, c.cmd, c.bundle, c.process)
		}
	}
}

func TestFixProcess(t *testing.T) {
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	allowed := boundingSet()
	spec := map[string]any{
		"process": map[string]any{
			"oomScoreAdj": float64(-998),
			"capabilities": map[string]any{
				"bounding":  []any{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"},
				"effective": []any{"CAP_SYS_RESOURCE"},
			},
			"rlimits": []any{map[string]any{"type": "RLIMIT_NOFILE", "hard": float64(nofile.Max) + 1000, "soft": float64(1024)}},
			"args":    []any{"/sbin/init"},
		},
		"hostname": "kept",
	}
	dir := t.TempDir()
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewriteSpec([]string{"create", "--bundle", dir, "ctr"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	b, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	p := got["process"].(map[string]any)
	if p["oomScoreAdj"].(float64) != 0 {
		t.Errorf("oomScoreAdj = %v, want 0", p["oomScoreAdj"])
	}
	var wantBounding []any
	for _, c := range []string{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"} {
		if allowed[c] {
			wantBounding = append(wantBounding, c)
		}
	}
	if gotB := p["capabilities"].(map[string]any)["bounding"].([]any); !reflect.DeepEqual(gotB, wantBounding) {
		t.Errorf("bounding = %v, want %v (the host's bounding set)", gotB, wantBounding)
	}
	rl := p["rlimits"].([]any)[0].(map[string]any)
	if uint64(rl["hard"].(float64)) != nofile.Max || rl["soft"].(float64) != 1024 {
		t.Errorf("rlimit = %v, want hard clamped to %d and soft kept", rl, nofile.Max)
	}
	if got["hostname"] != "kept" || !reflect.DeepEqual(p["args"], []any{"/sbin/init"}) {
		t.Errorf("other fields changed: %v", got)
	}
}
