package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// What diagnose makes (namespaces and pods by "ns/name"), and the pods'
	// logs by container ("probe" or "counters") and pod name suffix.
	namespaces map[string]*corev1.Namespace
	pods       map[string]*corev1.Pod
	logs       func(pod, container string) string
	// dryRuns are the request numbers of pod dry runs; firstProbe is the
	// number of the first probe pod really created.
	dryRuns    []int
	firstProbe int
}

func (s *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	write := func(o any) { _ = json.NewEncoder(w).Encode(o) }
	p := r.URL.Path
	if s.workload(w, r) {
		return
	}
	switch {
	case r.Method == http.MethodPost && p == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		rev := decodeBody(r).(*authv1.SelfSubjectAccessReview)
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
		l.Items = objectsOf[corev1.Node](s.objs)
		write(l)
		return
	case p == "/apis/apps/v1/daemonsets":
		l := &appsv1.DaemonSetList{TypeMeta: metav1.TypeMeta{Kind: "DaemonSetList", APIVersion: "apps/v1"}}
		l.Items = objectsOf[appsv1.DaemonSet](s.objs)
		write(l)
		return
	case p == "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices":
		l := &discoveryv1.EndpointSliceList{TypeMeta: metav1.TypeMeta{Kind: "EndpointSliceList", APIVersion: "discovery.k8s.io/v1"}}
		l.Items = objectsOf[discoveryv1.EndpointSlice](s.objs)
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

// workload serves what diagnose makes: namespaces and pods (dry runs store
// nothing; pods finish at once), their logs, and the lists of the final
// check. It reports whether it answered.
func (s *fakeAPIServer) workload(w http.ResponseWriter, r *http.Request) bool {
	if s.namespaces == nil {
		s.namespaces, s.pods = map[string]*corev1.Namespace{}, map[string]*corev1.Pod{}
	}
	write := func(code int, o any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(o)
	}
	dry := r.URL.Query().Get("dryRun") == "All"
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces":
		ns := decodeBody(r).(*corev1.Namespace)
		if !dry {
			s.namespaces[ns.Name] = ns
		}
		write(http.StatusCreated, ns)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces":
		l := corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"}}
		for _, n := range s.namespaces {
			l.Items = append(l.Items, *n)
		}
		write(http.StatusOK, l)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/pods":
		l := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range s.pods {
			l.Items = append(l.Items, *p)
		}
		write(http.StatusOK, l)
	case len(parts) == 2 && parts[0] == "namespaces" && r.Method == http.MethodDelete:
		delete(s.namespaces, parts[1])
		for k := range s.pods {
			if strings.HasPrefix(k, parts[1]+"/") {
				delete(s.pods, k)
			}
		}
		write(http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
	case len(parts) == 2 && parts[0] == "namespaces" && r.Method == http.MethodGet:
		ns, ok := s.namespaces[parts[1]]
		if !ok {
			return false // the 404 below
		}
		write(http.StatusOK, ns)
	case len(parts) == 3 && parts[2] == "pods" && r.Method == http.MethodGet:
		l := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for k, p := range s.pods {
			if strings.HasPrefix(k, parts[1]+"/") {
				l.Items = append(l.Items, *p)
			}
		}
		write(http.StatusOK, l)
	case len(parts) == 3 && parts[2] == "pods" && r.Method == http.MethodPost:
		pod := decodeBody(r).(*corev1.Pod)
		if dry {
			s.dryRuns = append(s.dryRuns, len(s.reqs))
		} else if s.firstProbe == 0 && strings.HasPrefix(pod.Name, "probe-") {
			s.firstProbe = len(s.reqs)
		}
		if !dry {
			pod.Status.Phase = corev1.PodSucceeded
			s.pods[parts[1]+"/"+pod.Name] = pod
		}
		write(http.StatusCreated, pod)
	case len(parts) == 4 && parts[2] == "pods" && r.Method == http.MethodGet:
		pod, ok := s.pods[parts[1]+"/"+parts[3]]
		if !ok {
			return false
		}
		write(http.StatusOK, pod)
	case len(parts) == 5 && parts[4] == "log":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, s.logs(parts[3], r.URL.Query().Get("container")))
	default:
		return false
	}
	return true
}

// decodeBody reads a request's object in whatever encoding client-go chose
// (protobuf for built-in types, JSON otherwise).
func decodeBody(r *http.Request) runtime.Object {
	b, _ := io.ReadAll(r.Body)
	o, _, err := scheme.Codecs.UniversalDeserializer().Decode(b, nil, nil)
	if err != nil {
		panic(fmt.Sprintf("decode %s %s: %v", r.Method, r.URL.Path, err))
	}
	return o
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

// recordedLog serves pkg/diagnose's measure/ fixtures: bare glibc through
// the VIP delayed, every other probe clean, the counters of a 5.4 kernel.
func recordedLog(t *testing.T) func(pod, container string) string {
	read := func(name string) string {
		b, err := os.ReadFile("../../pkg/diagnose/testdata/measure/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	delayed, clean, counters := read("probe-delayed.log"), read("probe-clean.log"), read("counters-5.4.log")
	return func(pod, container string) string {
		switch {
		case container == "counters":
			return counters
		case strings.HasSuffix(pod, "-v0-t0"):
			return delayed
		}
		return clean
	}
}

// A measurement over HTTP: namespace and pods created (each pod dry-run
// first), logs read through client-go, counters paired, the verdict, and
// everything deleted, as the final check says.
func TestDiagnoseMeasureOverHTTP(t *testing.T) {
	api := &fakeAPIServer{objs: fixtureObjects(t, "../../pkg/diagnose/testdata/cluster/kind-lab.yaml"), logs: recordedLog(t)}
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("PATH", "")
	var out, errs bytes.Buffer
	ctx := context.Background()
	err := Run(ctx, Streams{Out: &out, Err: &errs}, []string{"diagnose", "--kubeconfig", kubeconfigFor(t, srv.URL), "--json", "--allow-privileged", "--duration", "1s"})
	if code := ExitCode(ctx, err); code != ExitOK {
		t.Fatalf("exit %d: %v\n%s", code, err, errs.String())
	}
	var r diagnose.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	m := r.Measurement
	if r.Access.Tier != diagnose.TierCounters || m == nil || len(m.Bursts) == 0 || len(m.Counters) != 3 {
		t.Fatalf("access %+v, measurement %+v, skipped %q", r.Access, m, r.Skipped)
	}
	for _, b := range m.Bursts {
		if !b.Complete {
			t.Errorf("burst %s: %s", b.Pod, b.Problem)
		}
	}
	if r.Verdict.Verdict != diagnose.VerdictAffected || !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
		t.Errorf("verdict %q, cleanup %q", r.Verdict.Verdict, m.Cleanup)
	}
	// Every probe pod was dry-run before any was created.
	if n := len(api.dryRuns); n == 0 || api.dryRuns[n-1] > api.firstProbe {
		t.Errorf("dry runs at requests %v, the first probe pod created at %d", api.dryRuns, api.firstProbe)
	}
	if len(api.namespaces) != 0 || len(api.pods) != 0 {
		t.Errorf("left on the server: %d namespaces, %d pods", len(api.namespaces), len(api.pods))
	}
	if !strings.Contains(errs.String(), "cleanup: nothing left") {
		t.Errorf("stderr lacks the final check:\n%s", errs.String())
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

// objectsOf are the objects of type T among objs, as a list's items.
func objectsOf[T any](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := any(o).(*T); ok {
			out = append(out, *t)
		}
	}
	return out
}
