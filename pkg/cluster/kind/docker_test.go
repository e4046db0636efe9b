package kind

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitDocker(t *testing.T) {
	down := errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	tests := []struct {
		name    string
		fails   int // answers after this many failed checks (-1: never)
		cancel  bool
		wantErr string
		waited  bool
	}{
		{"answers at once", 0, false, "", false},
		{"back after a restart", 3, false, "", true},
		{"never back", -1, false, "did not answer within", true},
		{"interrupted while waiting", -1, true, "context canceled", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			check := func(context.Context) error {
				n++
				if tt.cancel && n == 2 {
					cancel()
				}
				if tt.fails >= 0 && n > tt.fails {
					return nil
				}
				return down
			}
			var progress bytes.Buffer
			err := waitDocker(ctx, &progress, "cluster x", check, 50*time.Millisecond, 5*time.Millisecond)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
			if got := strings.Contains(progress.String(), "waiting up to"); got != tt.waited {
				t.Errorf("progress %q: said it waits %v, want %v", progress.String(), got, tt.waited)
			}
		})
	}
	if !daemonGone(errors.New("exec: "+down.Error())) || daemonGone(errors.New("exit status 1: no such file")) {
		t.Error("daemonGone")
	}
}

// A node image keeping its images unpacked is refused only where its pods'
// overlays would nest too deep: an overlay driver on a data root that is
// itself an overlay. The message names the image, the data root, the driver
// and the way out.
func TestNestingProblem(t *testing.T) {
	for _, tt := range []struct {
		driver        string
		rootOnOverlay bool
		refused       bool
	}{
		{"overlay2", false, false},
		{"overlayfs", false, false}, // Docker's containerd image store
		{"overlay2", true, true},
		{"overlayfs", true, true},
		{"vfs", true, false}, // the node's root is a plain folder: one level less
		{"btrfs", false, false},
	} {
		err := nestingProblem("labrun/node:v1.36.1-lab", "/kind/snapshots", tt.driver, "/var/lib/docker", tt.rootOnOverlay)
		if (err != nil) != tt.refused {
			t.Errorf("driver %s, data root on an overlay %v: err %v, want refused %v", tt.driver, tt.rootOnOverlay, err, tt.refused)
		}
		if err != nil {
			for _, want := range []string{"labrun/node:v1.36.1-lab", "/kind/snapshots", "/var/lib/docker", tt.driver, "--data-root"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
		}
	}
}
