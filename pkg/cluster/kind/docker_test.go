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
