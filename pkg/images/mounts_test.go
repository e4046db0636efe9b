package images

import (
	"slices"
	"strings"
	"testing"
)

func TestMountsUnder(t *testing.T) {
	const table = `22 1 0:21 / /proc rw - proc proc rw
300 29 0:60 / /var/cache/labrun/tmp/probe-123/root/proc rw - proc proc rw
301 300 0:61 / /var/cache/labrun/tmp/probe-123/root/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
302 29 0:62 / /var/cache/labrun/tmp/probe-123/root/dev/pts rw - devpts devpts rw
303 29 0:63 / /var/cache/labrun/tmp/probe-1234/root/proc rw - proc proc rw
304 29 0:64 / /var/cache/labrun/tmp/probe-123/with\040space rw - tmpfs tmpfs rw
`
	tests := []struct {
		dir  string
		want []string
	}{
		{"/var/cache/labrun/tmp/probe-123", []string{
			"/var/cache/labrun/tmp/probe-123/root/proc/sys/fs/binfmt_misc",
			"/var/cache/labrun/tmp/probe-123/root/proc",
			"/var/cache/labrun/tmp/probe-123/root/dev/pts",
			"/var/cache/labrun/tmp/probe-123/with space",
		}},
		{"/var/cache/labrun/tmp/probe-123/", nil}, // cleaned: same as above
		{"/var/cache/labrun/tmp/none", nil},
		{"/proc", []string{"/proc"}},
	}
	tests[1].want = tests[0].want
	for _, tt := range tests {
		got, err := mountsUnder(strings.NewReader(table), tt.dir)
		if err != nil {
			t.Fatal(err)
		}
		// Deepest first: a mount inside another comes before it.
		if !slices.Equal(got[:min(len(got), 1)], tt.want[:min(len(tt.want), 1)]) || len(got) != len(tt.want) {
			t.Errorf("mountsUnder(%q) = %q, want %q", tt.dir, got, tt.want)
		}
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("mountsUnder(%q) = %q: %q missing", tt.dir, got, w)
			}
		}
	}
}
