package cluster

import (
	"context"
	"fmt"
	"io"
	"sync"

	"k8s.io/client-go/rest"
)

// Warnings passes the API server's warnings (a deprecated API the lab or an
// add-on manifest uses, mostly) to the lab's progress output, each distinct
// one once, as "kubernetes: warning: …". client-go's default handler logs
// every one through klog, a raw "I1204 … warnings.go:107]" line on stderr
// for each request that earns it.
type Warnings struct {
	mu   sync.Mutex
	out  io.Writer
	seen map[string]bool
}

var _ rest.WarningHandlerWithContext = (*Warnings)(nil)

// NewWarnings writes warnings to out; nil discards them.
func NewWarnings(out io.Writer) *Warnings {
	if out == nil {
		out = io.Discard
	}
	return &Warnings{out: out, seen: map[string]bool{}}
}

// HandleWarningHeaderWithContext is called by client-go with each Warning
// header of a response. Only code 299 is a warning meant for the user
// (RFC 7234, as the API server sends them); others are dropped, as client-go
// does.
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[text] {
		return
	}
	w.seen[text] = true
	fmt.Fprintf(w.out, "kubernetes: warning: %s\n", text)
}
