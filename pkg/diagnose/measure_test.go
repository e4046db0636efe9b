package diagnose

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// apiServer makes the fake clientset behave as the API server does where
// Measure depends on it: dry runs store nothing, deleting a namespace
// deletes its pods, and pods finish at once (the kubelet's part). It counts
// the pods really created.
type apiServer struct {
	cs      *fake.Clientset
	created atomic.Int32
	mu      sync.Mutex
	ran     []string // the images of the pods created
	// refuse, when set, refuses dry runs of pods it matches, as admission.
	refuse func(*corev1.Pod) error
	// status, when set, is a created pod's status (default: succeeded).
	status func(*corev1.Pod) corev1.PodStatus
}

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{cs: fakeCluster(t, "cluster/kind-lab.yaml")}
	s.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateActionImpl)
		pod := ca.GetObject().(*corev1.Pod)
		if slices.Contains(ca.CreateOptions.DryRun, metav1.DryRunAll) {
			if s.refuse != nil {
				if err := s.refuse(pod); err != nil {
					return true, nil, err
				}
			}
			return true, pod, nil
		}
		s.created.Add(1)
		s.mu.Lock()
		s.ran = append(s.ran, pod.Spec.Containers[0].Image)
		s.mu.Unlock()
		pod = pod.DeepCopy()
		pod.Status.Phase = corev1.PodSucceeded
		if s.status != nil {
			pod.Status = s.status(pod)
		}
		return true, nil, s.cs.Tracker().Create(corev1.SchemeGroupVersion.WithResource("pods"), pod, pod.Namespace)
	})
	s.cs.PrependReactor("create", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateActionImpl)
		if slices.Contains(ca.CreateOptions.DryRun, metav1.DryRunAll) {
			return true, ca.GetObject(), nil
		}
		return false, nil, nil
	})
	s.cs.PrependReactor("delete", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ns := a.(k8stesting.DeleteAction).GetName()
		pods, _ := s.cs.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), ns)
		for _, p := range pods.(*corev1.PodList).Items {
			_ = s.cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ns, p.Name)
		}
		return false, nil, nil
	})
	return s
}

func (s *apiServer) images() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ran)
}

func measureFacts(t *testing.T, cs *fake.Clientset) Facts {
	f, err := Gather(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var testImages = Images{Glibc: "labrun/probe-glibc:t", Musl: "labrun/probe-musl:t", PullPolicy: corev1.PullNever}

func TestMeasureLeavesNothing(t *testing.T) {
	s := newAPIServer(t)
	f := measureFacts(t, s.cs)
	m, err := Measure(context.Background(), s.cs, f, MeasureOptions{ID: "t1", Load: DefaultLoad, Images: testImages, ClusterDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	// kind-lab: 2 ready nodes (worker2 is not ready: 1 probed) … ready ones
	// are labrun-control-plane and labrun-worker; workers first.
	want := len(PlanProbes(f, ProbeNodes(f.Nodes, 2)))
	if len(m.Bursts) != want || int(s.created.Load()) != want {
		t.Errorf("%d bursts, %d pods created, want %d", len(m.Bursts), s.created.Load(), want)
	}
	// The fake's logs are not a probe's: every burst says so, none is
	// taken as measured.
	for _, b := range m.Bursts {
		if b.Complete || !strings.Contains(b.Problem, "no summary line") {
			t.Errorf("burst %s: %+v", b.Pod, b)
		}
	}
	if !strings.Contains(m.CountersNote, "needs --allow-privileged") || m.Counters != nil {
		t.Errorf("counters without the flag: %q %v", m.CountersNote, m.Counters)
	}
	if !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
		t.Errorf("cleanup: %s", m.Cleanup)
	}
	if left, _ := Leftovers(context.Background(), s.cs, "t1"); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

func TestMeasureRefusedByAdmission(t *testing.T) {
	s := newAPIServer(t)
	s.refuse = func(p *corev1.Pod) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name,
			errors.New(`violates PodSecurity "restricted:latest": seccompProfile`))
	}
	m, err := Measure(context.Background(), s.cs, measureFacts(t, s.cs), MeasureOptions{ID: "t2", Load: DefaultLoad, Images: testImages, Counters: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.created.Load() != 0 || !strings.Contains(m.Refused, "PodSecurity") || len(m.Bursts) != 0 {
		t.Errorf("created %d, refused %q, bursts %d", s.created.Load(), m.Refused, len(m.Bursts))
	}
	if !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
		t.Errorf("cleanup: %s", m.Cleanup)
	}
}

// Counter pods refused (hostNetwork under baseline) while probe pods pass:
// the probes run, the counters say why they were not read.
func TestMeasureCountersRefused(t *testing.T) {
	s := newAPIServer(t)
	s.refuse = func(p *corev1.Pod) error {
		if p.Spec.HostNetwork {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name, errors.New(`violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)`))
		}
		return nil
	}
	m, err := Measure(context.Background(), s.cs, measureFacts(t, s.cs), MeasureOptions{ID: "t3", Load: DefaultLoad, Images: testImages, Counters: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bursts) == 0 || !strings.Contains(m.CountersNote, "hostNetwork=true") {
		t.Errorf("bursts %d, counters note %q", len(m.Bursts), m.CountersNote)
	}
}

// Ctrl-C while the probes run: Measure returns the interruption and still
// deletes everything.
func TestMeasureInterrupted(t *testing.T) {
	s := newAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Pods never finish; the context is cancelled once they exist.
	s.cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if s.created.Load() > 0 {
			cancel()
		}
		return true, &corev1.PodList{}, nil // running, as far as anyone can tell
	})
	done := make(chan struct{})
	var m *Measurement
	var err error
	go func() {
		m, err = Measure(ctx, s.cs, measureFacts(t, s.cs), MeasureOptions{ID: "t4", Load: DefaultLoad, Images: testImages})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Measure did not return after the interrupt")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want the interruption", err)
	}
	if !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
		t.Errorf("cleanup after Ctrl-C: %s", m.Cleanup)
	}
}

func TestMeasureNeedsANode(t *testing.T) {
	cs := fake.NewClientset()
	if _, err := Measure(context.Background(), cs, Facts{DNS: dns(2)}, MeasureOptions{ID: "t5", Load: DefaultLoad, Images: testImages}); err == nil || !strings.Contains(err.Error(), "no ready node") {
		t.Errorf("got %v", err)
	}
	if list, _ := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("a namespace was made: %v", list.Items)
	}
}

// recordedLogs serves the measure/ fixtures as pod logs: bare glibc through
// the VIP (pods probe-n*-v0-t0) delayed, every other probe clean, every
// counter pod the 5.4 kernel's counters.
func recordedLogs(t *testing.T) func(context.Context, string, string, string) ([]byte, error) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "measure", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	delayed, clean, counters := read("probe-delayed.log"), read("probe-clean.log"), read("counters-5.4.log")
	return func(_ context.Context, _, pod, container string) ([]byte, error) {
		switch {
		case container == "counters":
			return counters, nil
		case strings.HasSuffix(pod, "-v0-t0"):
			return delayed, nil
		}
		return clean, nil
	}
}

// The whole path from pods to verdict on recorded logs: the delays are
// placed on the VIP, single-request-reopen's zero is evidence, and each
// counter pod's snapshots are paired around the probes' own window.
func TestMeasureJudgeRecorded(t *testing.T) {
	s := newAPIServer(t)
	f := measureFacts(t, s.cs)
	m, err := Measure(context.Background(), s.cs, f, MeasureOptions{ID: "r1", Load: DefaultLoad, Images: testImages, Counters: true,
		Settle: time.Millisecond, Logs: recordedLogs(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Counters on the probed nodes and on the DNS pods' nodes (worker2 holds
	// one though it is not ready: it is not probed, its counters are read).
	if len(m.Counters) != 3 {
		t.Fatalf("counters: %+v (%s)", m.Counters, m.CountersNote)
	}
	for _, c := range m.Counters {
		if c.Delta["insert_failed"] != 44 || c.Clashres {
			t.Errorf("counters of %s: %+v", c.Node, c)
		}
	}
	v := Judge(f, Predict(f), m)
	ev := strings.Join(v.Evidence, "\n")
	if v.Verdict != VerdictAffected {
		t.Errorf("verdict %q:\n%s", v.Verdict, ev)
	}
	for _, want := range []string{"glibc → vip: 4 of 10 lookups waited for a retry (on labrun-worker, labrun-control-plane)",
		"the delays are on the VIP path", "single-request-reopen removed them", "insert_failed +44"} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q:\n%s", want, ev)
		}
	}
	var text bytes.Buffer
	r := &Report{Facts: f, Prediction: Predict(f), Measurement: m, Verdict: v}
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MEASUREMENT  20s per probe pod at 10 lookups/s (concurrency 2)", "RETRIED", "labrun-worker         glibc                        vip 10.96.0.10",
		"COUNTERS  (the node's /proc/net/stat/nf_conntrack around the probes' window)", "labrun-worker2: insert_failed +44",
		"VERDICT  affected", "recommend: glibc workloads: add `options single-request-reopen`", "cleanup: nothing left"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

// A probe image the nodes cannot pull ends the wait at once with the
// kubelet's reason, and the verdict says so instead of waiting minutes.
func TestMeasureImageCannotBePulled(t *testing.T) {
	s := newAPIServer(t)
	s.status = func(p *corev1.Pod) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "reg.example/probe:v1"`}},
		}}}
	}
	f := measureFacts(t, s.cs)
	start := time.Now()
	m, err := Measure(context.Background(), s.cs, f, MeasureOptions{ID: "p1", Load: DefaultLoad, Images: testImages, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s: the wait must end at the first poll", took)
	}
	v := Judge(f, Predict(f), m)
	if v.Verdict != VerdictInconclusive || !strings.Contains(strings.Join(v.Evidence, " "), "cannot start: ImagePullBackOff") {
		t.Errorf("verdict %q: %q", v.Verdict, v.Evidence)
	}
	if !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
		t.Errorf("cleanup: %s", m.Cleanup)
	}
}

// A counter pod that cannot start costs the counters, said with the
// kubelet's reason, and the probes still run.
func TestMeasureCounterPodStuck(t *testing.T) {
	s := newAPIServer(t)
	s.status = func(p *corev1.Pod) corev1.PodStatus {
		if !p.Spec.HostNetwork {
			return corev1.PodStatus{Phase: corev1.PodSucceeded}
		}
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "hostNetwork denied by the runtime"}},
		}}}
	}
	m, err := Measure(context.Background(), s.cs, measureFacts(t, s.cs), MeasureOptions{ID: "c1", Load: DefaultLoad, Images: testImages, Counters: true, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bursts) == 0 || m.Counters != nil || !strings.Contains(m.CountersNote, "cannot start: CreateContainerConfigError") {
		t.Errorf("bursts %d, counters %v, note %q", len(m.Bursts), m.Counters, m.CountersNote)
	}
}
