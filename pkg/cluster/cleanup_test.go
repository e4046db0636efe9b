package cluster

import (
	"context"
	"testing"
	"time"
)

// TestCleanupContext: a deletion after a failure or an interrupt runs
// although its parent ended, and within CleanupTimeout.
func TestCleanupContext(t *testing.T) {
	type key struct{}
	for _, tc := range []struct {
		name   string
		parent func() context.Context
	}{
		{"parent live", func() context.Context { return context.Background() }},
		{"parent cancelled (Ctrl-C)", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"parent past its deadline", func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
			t.Cleanup(cancel)
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := context.WithValue(tc.parent(), key{}, "v")
			ctx, cancel := CleanupContext(parent)
			defer cancel()
			if err := ctx.Err(); err != nil {
				t.Errorf("cleanup context ended with its parent: %v", err)
			}
			deadline, ok := ctx.Deadline()
			if left := time.Until(deadline); !ok || left <= 0 || left > CleanupTimeout {
				t.Errorf("deadline in %s (set %v): want within %s", left, ok, CleanupTimeout)
			}
			if ctx.Value(key{}) != "v" {
				t.Error("the parent's values are lost")
			}
		})
	}
}
