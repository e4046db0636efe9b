package probe

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"labrun.dev/labrun/pkg/sample"
)

// Outcome is what one lookup through a back end gave.
type Outcome struct {
	Result  sample.Result
	Answers int    // addresses returned (0 when the back end cannot tell, e.g. gRPC)
	Err     string // why, when Result is not OK
	// Took, when non-zero, is the back end's own measure of the lookup
	// (the gRPC worker times itself, so the pipe to it is not counted).
	Took time.Duration
}

// Resolver is one back end. Lookup must be safe for concurrent use; it
// returns when the library call returns (a library call cannot be cancelled,
// so ctx only bounds the back ends that can honour it).
type Resolver interface {
	Lookup(ctx context.Context, name string) Outcome
	Close() error
}

// flushEvery bounds how long a written sample may sit in the output buffer.
const flushEvery = 100 * time.Millisecond

// Offset is when lookup i is due, counted from the start, at rate lookups per
// second over the whole probe. Pure arithmetic, so pacing is tested without
// sleeping; rate 0 means no pacing.
func Offset(i uint64, rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(i) * float64(time.Second) / rate)
}

// Run looks up cfg.Names round robin with cfg.Concurrency workers, paced at
// cfg.Rate, until cfg.Duration or cfg.Count is reached or ctx is cancelled,
// and writes one Sample per lookup and then the Summary to enc. Lookups in
// flight when ctx is cancelled are finished and written; the Summary then has
// Complete false. cfg must have been validated.
func Run(ctx context.Context, cfg Config, r Resolver, enc *sample.Encoder) (sample.Summary, error) {
	sum := sample.Summary{
		Resolver: cfg.Backend,
		Pod:      cfg.Pod,
		Node:     cfg.Node,
		ByResult: map[sample.Result]uint64{},
	}
	if cfg.Backend == JVM {
		sum.Variant = cfg.JVMCache
	}
	for _, res := range sample.Results {
		sum.ByResult[res] = 0
	}
	var (
		next     atomic.Uint64 // index of the next lookup to start
		mu       sync.Mutex    // guards enc, sum and writeErr; Seq follows output order
		writeErr error
		wg       sync.WaitGroup
	)
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	worker := func() {
		defer wg.Done()
		for {
			i := next.Add(1) - 1
			if cfg.Count > 0 && i >= cfg.Count {
				return
			}
			due := Offset(i, cfg.Rate)
			if cfg.Duration > 0 && (due >= cfg.Duration || time.Since(start) >= cfg.Duration) {
				return
			}
			if wait := time.Until(start.Add(due)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-workCtx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			if workCtx.Err() != nil {
				return
			}
			name := cfg.Names[i%uint64(len(cfg.Names))]
			began := time.Now()
			out := r.Lookup(workCtx, name.Name)
			took := time.Since(began)
			if out.Took > 0 {
				took = out.Took
			}
			s := sample.Sample{
				StartNS:    began.UnixNano(),
				DurationUS: took.Microseconds(),
				Cell:       cfg.Cell,
				Resolver:   cfg.Backend,
				Mitigation: cfg.Mitigation,
				Name:       name.Name,
				NameKind:   name.Kind,
				Result:     out.Result,
				ErrorText:  out.Err,
				Answers:    out.Answers,
				Pod:        cfg.Pod,
				Node:       cfg.Node,
			}
			mu.Lock()
			if writeErr == nil {
				s.Seq = sum.Lookups
				err := enc.Sample(&s)
				if err != nil {
					writeErr = fmt.Errorf("write sample: %w", err)
					stop()
				} else {
					sum.Lookups++
					sum.ByResult[s.Result]++
				}
			}
			mu.Unlock()
		}
	}
	// A flusher, not a write per lookup: a collector tailing the output sees
	// each lookup within flushEvery, and a write per lookup would cost more
	// than a fast lookup itself.
	flusherDone := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Add(1)
	go func() {
		defer flusher.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-flusherDone:
				return
			case <-t.C:
				mu.Lock()
				if writeErr == nil {
					if err := enc.Flush(); err != nil {
						writeErr = fmt.Errorf("write samples: %w", err)
						stop()
					}
				}
				mu.Unlock()
			}
		}
	}()
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go worker()
	}
	wg.Wait()
	close(flusherDone)
	flusher.Wait()
	if writeErr != nil {
		return sum, writeErr
	}
	sum.Complete = ctx.Err() == nil
	if err := enc.Summary(&sum); err != nil {
		return sum, fmt.Errorf("write summary: %w", err)
	}
	if err := enc.Flush(); err != nil {
		return sum, fmt.Errorf("flush output: %w", err)
	}
	return sum, nil
}
