//go:build e2e

package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fault is what to do to labrun, and when: a signal, or an action of the
// test's, once a line of its progress contains marker, after a delay.
type fault struct {
	marker string
	after  time.Duration
	signal syscall.Signal // 0: none
	action func()         // run instead of a signal when set
}

// proc is one labrun invocation and what it printed.
type proc struct {
	code   int
	stdout string
	stderr string
	fired  time.Time // when the fault struck (zero if its marker never came)
	exited time.Time
}

// runLabrun runs the labrun binary with args, striking f (if any), and
// waits for it to exit within limit. Its progress is echoed to the test's
// stderr with a prefix, as it comes.
func runLabrun(ctx context.Context, t *testing.T, limit time.Duration, f *fault, args ...string) proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, labrun, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ labrun %s", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		p      proc
		mu     sync.Mutex
		all    strings.Builder
		once   sync.Once
		wg     sync.WaitGroup
		timer  *time.Timer
		struck sync.WaitGroup
	)
	strike := func() {
		mu.Lock()
		p.fired = time.Now()
		mu.Unlock()
		if f.action != nil {
			f.action()
			return
		}
		t.Logf("faults: sending %s to labrun (pid %d)", f.signal, cmd.Process.Pid)
		cmd.Process.Signal(f.signal)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(os.Stderr, "  labrun| %s\n", line)
			all.WriteString(line + "\n")
			if f != nil && strings.Contains(line, f.marker) {
				once.Do(func() {
					struck.Add(1)
					timer = time.AfterFunc(f.after, func() {
						defer struck.Done()
						strike()
					})
				})
			}
		}
		io.Copy(io.Discard, stderrPipe)
	}()
	wg.Wait()
	err = cmd.Wait()
	p.exited = time.Now()
	// A fault still on its way is not struck at a process that has gone; one
	// under way (a dockerd restart) is waited for: the host is checked next.
	if timer != nil && timer.Stop() {
		struck.Done()
	}
	struck.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		p.code = ee.ExitCode()
	case ctx.Err() != nil:
		t.Fatalf("labrun %s: still running after %s: killed", strings.Join(args, " "), limit)
	default:
		p.code = -1 // killed by a signal (SIGKILL)
	}
	mu.Lock()
	defer mu.Unlock()
	p.stdout, p.stderr = stdout.String(), all.String()
	if f != nil && p.fired.IsZero() {
		t.Fatalf("labrun %s exited %d before %q appeared in its progress", strings.Join(args, " "), p.code, f.marker)
	}
	return p
}

// cleanupTime is how long labrun took from the fault to its exit.
func (p proc) cleanupTime() time.Duration { return p.exited.Sub(p.fired).Round(100 * time.Millisecond) }
