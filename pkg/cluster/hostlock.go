package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HostLockPath is the lock every lab cluster's creation and deletion take
// around what they change on the host for all lab clusters together: the
// recorded sysctls, the egress guard and kind's Docker network (see
// LockHost). /run is a tmpfs: the file is gone after a reboot, as is every
// cluster it guarded.
var HostLockPath = "/run/labrun/host.lock"

// LockHost takes the host lock (HostLockPath), waiting while another
// cluster's creation or deletion, in this process or another labrun, holds
// it; it says so on progress once if it has to wait. It returns when the
// lock is held or ctx ends (then with ctx's error). unlock releases it and
// may be called more than once.
//
// The lock is a flock on an open file description: the kernel drops it
// when the process dies (a kill -9 leaves no stale lock), and Go opens
// files close-on-exec, so no docker or kind child process inherits it.
// Two goroutines of one process exclude each other as two processes do,
// since each opens the file anew.
func LockHost(ctx context.Context, progress io.Writer, who string) (unlock func(), err error) {
	return lockFile(ctx, HostLockPath, func() {
		if progress != nil {
			fmt.Fprintf(progress, "%s: waiting for another lab cluster's creation or deletion (host lock %s)\n", who, HostLockPath)
		}
	})
}

// lockPollMax bounds the wait between two attempts at a busy lock.
const lockPollMax = 200 * time.Millisecond

// lockFile takes an exclusive flock on path (made, with its folder, if
// absent). While the lock is busy it tries again with a growing pause (up
// to lockPollMax) rather than block in flock(2): a blocked flock cannot be
// cancelled, and closing its file from another goroutine to end it races
// with the file descriptor's reuse. waiting, if not nil, is called once,
// before the first pause.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("host lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host lock: %w", err)
	}
	fd := int(f.Fd())
	pause := 5 * time.Millisecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			var once sync.Once
			return func() {
				once.Do(func() {
					unix.Flock(fd, unix.LOCK_UN)
					f.Close()
				})
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("host lock %s: %w", path, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, lockPollMax)
	}
}
