package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"labrun.dev/labrun/pkg/diagnose"
)

// fakeAPIServer serves the objects of a pkg/diagnose fixture over HTTP as
// the API server would (JSON, 404 Status for what is absent) and answers
// access reviews; it records every request.
type fakeAPIServer struct {
	objs []runtime.Object
	mu   sync.Mutex
	reqs []string
}

func (s *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	write := func(o any) { _ = json.NewEncoder(w).Encode(o) }
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		var rev authv1.SelfSubjectAccessReview
		_ = json.NewDecoder(r.Body).Decode(&rev)
		rev.Status.Allowed = true
		w.WriteHeader(http.StatusCreated)
		write(rev)
		return
	case r.Method != http.MethodGet:
	case p == "/version":
		write(map[string]string{"gitVersion": "v1.36.1", "major": "1", "minor": "36"})
		return
	case p == "/api/v1/nodes":
		l := &corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}}
		for _, o := range s.objs {
			if n, ok := o.(*corev1.Node); ok {
				l.Items = append(l.Items, *n)
			}
		}
		write(l)
		return
	case p == "/apis/apps/v1/daemonsets":
		l := &appsv1.DaemonSetList{TypeMeta: metav1.TypeMeta{Kind: "DaemonSetList", APIVersion: "apps/v1"}}
		for _, o := range s.objs {
			if d, ok := o.(*appsv1.DaemonSet); ok {
				l.Items = append(l.Items, *d)
			}
		}
		write(l)
		return
	case p == "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices":
		l := &discoveryv1.EndpointSliceList{TypeMeta: metav1.TypeMeta{Kind: "EndpointSliceList", APIVersion: "discovery.k8s.io/v1"}}
		for _, o := range s.objs {
			if e, ok := o.(*discoveryv1.EndpointSlice); ok {
				l.Items = append(l.Items, *e)
			}
		}
		write(l)
		return
	default:
		for _, o := range s.objs {
			m, _ := o.(metav1.Object)
			kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind) + "s"
			group := "/api/v1"
			if gv := o.GetObjectKind().GroupVersionKind().GroupVersion(); gv.Group != "" {
				group = "/apis/" + gv.String()
			}
			if m != nil && p == group+"/namespaces/"+m.GetNamespace()+"/"+kind+"/"+m.GetName() {
				write(o)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNotFound)
	write(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound, Message: p + " not found"})
}

func fixtureObjects(t *testing.T, file string) []runtime.Object {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		o, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
}

// The whole command over HTTP with client-go, facts only: every fact of
// the recorded cluster comes back in the JSON, only reads and access
// reviews reach the server, and no docker or kind is called (PATH empty).
func TestDiagnoseOverHTTP(t *testing.T) {
	api := &fakeAPIServer{objs: fixtureObjects(t, "../../pkg/diagnose/testdata/cluster/kind-lab.yaml")}
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("PATH", "")
	scenarioFile := t.TempDir() + "/shape.yaml"
	var out, errs bytes.Buffer
	ctx := context.Background()
	err := Run(ctx, Streams{Out: &out, Err: &errs}, []string{"diagnose", "--kubeconfig", kubeconfigFor(t, srv.URL), "--json", "--duration", "0", "--export-scenario", scenarioFile})
	if code := ExitCode(ctx, err); code != ExitOK {
		t.Fatalf("exit %d: %v\n%s", code, err, errs.String())
	}
	var r diagnose.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	f := r.Facts
	if f.Kubernetes != "v1.36.1" || len(f.Nodes) != 3 || f.KubeProxy.Mode != "iptables" || f.DNS.Ready != 2 || f.DNS.VIP != "10.96.0.10" ||
		f.CoreDNS == nil || len(f.CNIs) != 1 || len(f.NotRead) != 0 {
		t.Errorf("facts: %+v", f)
	}
	if r.Access.Tier != diagnose.TierFacts || r.Measurement != nil || r.Prediction.Verdict != diagnose.PredictNotAffected {
		t.Errorf("access %+v, prediction %+v", r.Access, r.Prediction)
	}
	for _, req := range api.reqs {
		if !strings.HasPrefix(req, "GET ") && req != "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
			t.Errorf("facts only, yet %s", req)
		}
	}
	if b, err := os.ReadFile(scenarioFile); err != nil || !strings.Contains(string(b), "kind: Scenario") {
		t.Errorf("--export-scenario: %v\n%s", err, b)
	}
}
