//go:build e2e

package lab

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/lab"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// cancelOnLine passes progress through and cancels a context a while after
// the first line containing a marker: Ctrl-C, at a chosen moment.
type cancelOnLine struct {
	out    io.Writer
	marker string
	after  time.Duration
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOnLine) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.once.Do(func() { time.AfterFunc(c.after, c.cancel) })
	}
	return c.out.Write(p)
}

func TestE2ELabRunInterrupted(t *testing.T) {
	const marker = "cell 1/4 default_glibc_none: glibc"
	f := features.New("Ctrl-C while the first cell's probes run").
		Assess("the run stops, keeps what was measured and leaves nothing behind", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// Whatever the interrupt leaves goes when the test ends (after
			// the check below that it left nothing).
			e2ekit.Keep(t, prefix)
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			// The probes run 60 s after a set-up of 4-6 s (more on a loaded
			// machine): 15 s after the cell starts they are running.
			progress := &cancelOnLine{out: os.Stderr, marker: marker, after: 15 * time.Second, cancel: cancel}
			res, err := lab.Run(runCtx, lab.RunOptions{
				Scenario: "testdata/interrupt-baseline.yaml", ResultsDir: t.TempDir(),
				ClusterPrefix: prefix, Progress: progress,
			})
			if !errors.Is(err, lab.ErrInterrupted) {
				t.Fatalf("lab.Run: err = %v, want one wrapping lab.ErrInterrupted", err)
			}
			if res == nil {
				t.Fatal("an interrupted run must still return where its results are")
			}
			if _, err := os.Stat(res.Index); err != nil {
				t.Errorf("the report of what was measured: %v", err)
			}
			first, ok, err := res.Run.ReadStatus("default_glibc_none")
			if err != nil || !ok || first.State != results.Incomplete || !strings.Contains(first.Reason, "interrupted") {
				t.Errorf("the running cell: %+v (ok %v, err %v), want incomplete, interrupted", first, ok, err)
			}
			incomplete := 0
			probes, err := res.Run.ReadSamples("default_glibc_none", func(*sample.Sample) {})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probes {
				if p.Summary != nil && !p.Summary.Complete && p.Summary.Lookups == p.Samples {
					incomplete++
				}
			}
			if incomplete == 0 {
				t.Errorf("no probe of the running cell wrote its summary after SIGTERM (complete: false): %+v", probes)
			}
			if _, ok, _ := res.Run.ReadCounters("default_glibc_none"); !ok {
				t.Error("the running cell's counters were not written")
			}
			for _, id := range []string{"default_glibc_single-request-reopen", "default_musl_none", "default_musl_single-request-reopen"} {
				st, ok, err := res.Run.ReadStatus(id)
				if err != nil || !ok || st.State != results.Incomplete || !strings.Contains(st.Reason, "--resume") {
					t.Errorf("cell %s: %+v (ok %v, err %v), want incomplete, to resume", id, st, ok, err)
				}
			}
			pending, err := res.Run.Pending([]string{"default_glibc_none", "default_musl_none"})
			if err != nil || len(pending) != 2 {
				t.Errorf("--resume would run %v (err %v), want both", pending, err)
			}
			left, err := kind.New(os.Stderr).List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if name := lab.ClusterName(prefix, "default"); slices.Contains(left, name) {
				t.Errorf("cluster %s left after Ctrl-C", name)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
