package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLockFileOrders: a second taker waits until the first releases (it is
// told once that it waits), then holds the lock alone; release is
// idempotent.
func TestLockFileOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "host.lock") // the folder is made
	unlock, err := lockFile(context.Background(), path, func() { t.Error("the first taker waited") })
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		order  []string
		waits  atomic.Int32
		second = make(chan struct{})
	)
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	go func() {
		defer close(second)
		u, err := lockFile(context.Background(), path, func() { waits.Add(1) })
		if err != nil {
			t.Error(err)
			return
		}
		note("second holds")
		u()
		u()
	}()
	// The second taker must be waiting, not holding.
	deadline := time.Now().Add(5 * time.Second)
	for waits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if waits.Load() != 1 {
		t.Fatalf("the second taker was told %d times that it waits, want 1", waits.Load())
	}
	time.Sleep(50 * time.Millisecond)
	note("first releases")
	unlock()
	unlock() // a second release does nothing
	select {
	case <-second:
	case <-time.After(5 * time.Second):
		t.Fatal("the second taker did not get the lock after the first released it")
	}
	if want := []string{"first releases", "second holds"}; len(order) != 2 || order[0] != want[0] || order[1] != want[1] {
		t.Errorf("order %q, want %q", order, want)
	}
	// Free again: a third taker does not wait.
	u, err := lockFile(context.Background(), path, func() { t.Error("a free lock made the taker wait") })
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestLockFileCancelWhileWaiting: a taker waiting for a held lock returns
// ctx's error soon after ctx ends, without the lock; the holder keeps it,
// and once released it can be taken.
func TestLockFileCancelWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.lock")
	unlock, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		u, err := lockFile(ctx, path, func() { close(waiting) })
		if u != nil {
			u()
		}
		got <- err
	}()
	<-waiting
	start := time.Now()
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > lockPollMax+500*time.Millisecond {
			t.Errorf("returned %s after the cancel", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled taker still waits")
	}
	// The holder still holds it: a non-waiting attempt with a cancelled
	// context fails, and after the release a taker gets it at once.
	short, stop := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer stop()
	if u, err := lockFile(short, path, nil); err == nil {
		u()
		t.Error("the lock was taken while held")
	}
	unlock()
	u, err := lockFile(context.Background(), path, func() { t.Error("a released lock made the taker wait") })
	if err != nil {
		t.Fatal(err)
	}
	u()
	// Already cancelled: no wait at all.
	if _, err := lockFile(ctx, path, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: err = %v", err)
	}
}
