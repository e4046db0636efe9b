package kind

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labrun.dev/labrun/pkg/cluster"
)

// An API server that warns on every request: the lab's progress output gets
// the warning once, prefixed, through the clientset every stage uses.
func TestRestConfigWarningsReachProgress(t *testing.T) {
	const warning = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Warning", fmt.Sprintf("299 - %q", warning))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}`)
	}))
	defer srv.Close()
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: %q}}]
users: [{name: lab, user: {}}]
contexts: [{name: lab, context: {cluster: lab, user: lab}}]
current-context: lab
`, srv.URL)

	var progress strings.Builder
	rc, err := restConfig([]byte(kubeconfig), cluster.NewWarnings(&progress))
	if err != nil {
		t.Fatal(err)
	}
	if rc.QPS < 50 || rc.Burst < 100 {
		t.Errorf("rate limit %g/s, burst %d: want at least 50/s, burst 100", rc.QPS, rc.Burst)
	}
	c, err := cluster.New("lab", "", rc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Client.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if want := "kubernetes: warning: " + warning + "\n"; progress.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", progress.String(), want)
	}
}
