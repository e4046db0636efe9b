package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestWarningsOnceEachWithPrefix(t *testing.T) {
	var b strings.Builder
	w := NewWarnings(&b)
	ctx := context.Background()
	const endpoints = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
	w.HandleWarningHeaderWithContext(ctx, 299, "-", endpoints)
	w.HandleWarningHeaderWithContext(ctx, 299, "-", endpoints)
	w.HandleWarningHeaderWithContext(ctx, 299, "-", "policy/v1beta1 PodSecurityPolicy is deprecated")
	w.HandleWarningHeaderWithContext(ctx, 299, "-", endpoints)
	w.HandleWarningHeaderWithContext(ctx, 199, "-", "miscellaneous, not for the user")
	w.HandleWarningHeaderWithContext(ctx, 299, "-", "")
	want := "kubernetes: warning: " + endpoints + "\n" +
		"kubernetes: warning: policy/v1beta1 PodSecurityPolicy is deprecated\n"
	if b.String() != want {
		t.Errorf("written:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Every clientset of a run shares one handler, called from many goroutines
// (the nodes of a cluster are set up side by side): still once each.
func TestWarningsConcurrent(t *testing.T) {
	var b strings.Builder
	w := NewWarnings(&b) // written to under the handler's lock
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				w.HandleWarningHeaderWithContext(context.Background(), 299, "-", "deprecated")
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "kubernetes: warning: deprecated\n"); got != 1 {
		t.Errorf("written %d times, want once:\n%s", got, b.String())
	}
}
