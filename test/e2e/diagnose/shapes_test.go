//go:build e2e

package diagnose

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/internal/cli"
	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/chaos"
	"labrun.dev/labrun/pkg/diagnose"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// TestE2EDiagnoseShapes changes the suite's cluster step by step, as a
// user's cluster may be: an admission policy that refuses what diagnose
// would make, the race (the lab's emulator, started as the lab starts it),
// CoreDNS with autopath, and NodeLocal DNSCache (last: it is not undone).
func TestE2EDiagnoseShapes(t *testing.T) {
	kubeconfig := func() string { return suite.Lab.Cluster.Kubeconfig }
	f := features.New("labrun diagnose on changed cluster shapes").
		Assess("a policy refusing host-network pods: the dry run catches it, no counter pod is made, the probes still run", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// A ValidatingAdmissionPolicy (a policy engine in the API
			// server) refusing what PodSecurity baseline and restricted
			// refuse of the counter pods: host networking.
			admit(ctx, t, "labrun-e2ediag-no-hostnetwork", "!has(object.spec.hostNetwork) || !object.spec.hostNetwork")
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--allow-privileged", "--duration", "8s")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			m := r.Measurement
			if m == nil || len(m.Bursts) == 0 {
				t.Fatalf("the probes should run: %s", r.Skipped)
			}
			if len(m.Counters) != 0 || !strings.Contains(m.CountersNote, "labrun-e2ediag-no-hostnetwork") {
				t.Errorf("counters %+v, note %q: want none, and the policy named", m.Counters, m.CountersNote)
			}
			if !strings.HasPrefix(m.Cleanup, "cleanup: nothing left") {
				t.Errorf("cleanup: %s", m.Cleanup)
			}
			noLeftovers(ctx, t, suite.Clientset())
			return ctx
		}).
		Assess("a policy refusing every pod: the dry run catches it and nothing but the namespace ever exists", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			admit(ctx, t, "labrun-e2ediag-no-pods", "false")
			made := watchPods(ctx, t)
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--allow-privileged", "--duration", "8s")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			if m := r.Measurement; m == nil || !strings.Contains(m.Refused, "labrun-e2ediag-no-pods") || len(m.Bursts) != 0 {
				t.Errorf("measurement %+v: want refused by the policy, no burst", m)
			}
			if n := made(); n != 0 {
				t.Errorf("%d pods were created in a diagnose namespace", n)
			}
			noLeftovers(ctx, t, suite.Clientset())
			return ctx
		}).
		Assess("the namespace under PodSecurity restricted: the probes pass it, the counter pods are refused by the dry run and never made", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// A MutatingAdmissionPolicy labels diagnose's namespace
			// pod-security.kubernetes.io/enforce=restricted as it is made, as
			// a cluster that enforces restricted everywhere would.
			restrictNamespaces(ctx, t)
			made := watchPods(ctx, t)
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--allow-privileged", "--duration", "8s")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			m := r.Measurement
			if m == nil || len(m.Bursts) == 0 {
				t.Fatalf("the probes pass restricted and should run: %s", r.Skipped)
			}
			for _, b := range m.Bursts {
				if !b.Complete {
					t.Errorf("burst %s: %s", b.Pod, b.Problem)
				}
			}
			if len(m.Counters) != 0 || !strings.Contains(m.CountersNote, "PodSecurity") {
				t.Errorf("counters %+v, note %q: want none, refused by PodSecurity", m.Counters, m.CountersNote)
			}
			if n := made(); n != len(m.Bursts) {
				t.Errorf("%d pods created for %d probes: a counter pod was made", n, len(m.Bursts))
			}
			noLeftovers(ctx, t, suite.Clientset())
			return ctx
		}).
		Assess("under the race emulator: affected on the VIP path, single-request-reopen removes it and is recommended", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			emulateRace(ctx, t)
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--allow-privileged", "--duration", "15s")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			var text strings.Builder
			r.WriteText(&text) // what a user reads (docs/diagnose.md shows one)
			t.Logf("the report as text:\n%s", text.String())
			if r.Verdict.Verdict != diagnose.VerdictAffected {
				t.Errorf("verdict %q, want %q; evidence:\n%s", r.Verdict.Verdict, diagnose.VerdictAffected, strings.Join(r.Verdict.Evidence, "\n"))
			}
			ts := diagnose.Tallies(r.Measurement.Bursts)
			for _, want := range []struct {
				variant, target string
				delayed         bool
			}{
				{"glibc", diagnose.TargetVIP, true},
				{"glibc", diagnose.TargetDNSPod, false},
				{"glibc+single-request-reopen", diagnose.TargetVIP, false},
				{"glibc+use-vc", diagnose.TargetVIP, false},
				{"musl", diagnose.TargetVIP, true},
				{"go", diagnose.TargetVIP, false}, // A and AAAA from separate sockets
			} {
				i := slices.IndexFunc(ts, func(x diagnose.Tally) bool { return x.Variant == want.variant && x.Target == want.target })
				if i < 0 || ts[i].Lookups == 0 {
					t.Errorf("%s → %s: not measured", want.variant, want.target)
					continue
				}
				if (ts[i].Retried > 0) != want.delayed {
					t.Errorf("%s → %s: %d of %d lookups waited for a retry; want delayed=%v", want.variant, want.target, ts[i].Retried, ts[i].Lookups, want.delayed)
				}
			}
			recs := strings.Join(r.Verdict.Recommendations, "\n")
			if !strings.Contains(recs, "single-request-reopen") || !strings.Contains(recs, "NodeLocal DNSCache") {
				t.Errorf("recommendations (want single-request-reopen for glibc, NodeLocal DNSCache for musl):\n%s", recs)
			}
			noLeftovers(ctx, t, suite.Clientset())
			return ctx
		}).
		Assess("CoreDNS with autopath: read from the Corefile, its memory cost flagged", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if err := addons.Autopath(ctx, addons.Env{Cluster: suite.Lab.Cluster}); err != nil {
				t.Fatal(err)
			}
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--duration", "0")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			if r.Facts.CoreDNS == nil || !slices.ContainsFunc(r.Facts.CoreDNS.Servers, func(s diagnose.CoreServer) bool { return s.Autopath != "" }) {
				t.Errorf("autopath not read from the Corefile: %+v", r.Facts.CoreDNS)
			}
			if !slices.ContainsFunc(r.Prediction.Backfires, func(b string) bool { return strings.Contains(b, "autopath") }) {
				t.Errorf("backfires %q: want autopath's memory cost", r.Prediction.Backfires)
			}
			return ctx
		}).
		Assess("NodeLocal DNSCache: found, measured on its own path, not affected", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			env := addons.Env{Cluster: suite.Lab.Cluster, Images: suite.Lab.Images, Progress: os.Stderr, Facts: map[string]string{}}
			if err := addons.NodeLocalDNS(ctx, env); err != nil {
				t.Fatal(err)
			}
			r, code := runDiagnose(ctx, t, "--kubeconfig", kubeconfig(), "--allow-privileged", "--duration", "10s")
			if code != cli.ExitOK {
				t.Fatalf("exit %d", code)
			}
			nl := r.Facts.NodeLocal
			if nl == nil || nl.ListenIP != "169.254.20.10" || !nl.InterceptsVIP {
				t.Fatalf("NodeLocal DNSCache facts: %+v", nl)
			}
			if r.Prediction.Verdict != diagnose.PredictNotAffected {
				t.Errorf("prediction %q; reasons:\n%s", r.Prediction.Verdict, strings.Join(r.Prediction.Reasons, "\n"))
			}
			ts := diagnose.Tallies(r.Measurement.Bursts)
			if !slices.ContainsFunc(ts, func(x diagnose.Tally) bool { return x.Target == diagnose.TargetNodeLocal && x.Lookups > 0 }) {
				t.Errorf("no lookup through %s: %+v", nl.ListenIP, ts)
			}
			if r.Verdict.Verdict != diagnose.VerdictNotAffected {
				t.Errorf("verdict %q; evidence:\n%s", r.Verdict.Verdict, strings.Join(r.Verdict.Evidence, "\n"))
			}
			noLeftovers(ctx, t, suite.Clientset())
			return ctx
		}).Feature()
	suite.Env.Test(t, f)
}

// admit installs a ValidatingAdmissionPolicy, bound to diagnose's
// namespaces, that refuses pods failing expr; removed when the test ends.
func admit(ctx context.Context, t *testing.T, name, expr string) {
	t.Helper()
	api := suite.Clientset().AdmissionregistrationV1()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: expr, Message: "refused by policy " + name}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{diagnose.LabelApp: diagnose.AppDiagnose},
			}},
		},
	}
	bg := context.WithoutCancel(ctx)
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.ValidatingAdmissionPolicies().Delete(bg, name, metav1.DeleteOptions{}) })
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.ValidatingAdmissionPolicyBindings().Delete(bg, name, metav1.DeleteOptions{}) })
	waitPolicy(ctx, t, name)
}

// waitPolicy returns once the API server enforces a new policy: its
// admission plugin learns of policies from an informer, so a dry-run pod
// in a labelled namespace is tried until it is refused.
func waitPolicy(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	cs := suite.Clientset()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "labrun-diag-policy-", Labels: map[string]string{diagnose.LabelApp: diagnose.AppDiagnose}}}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns.Name, metav1.DeleteOptions{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns.Name},
		Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	for range 100 {
		_, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), name) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("policy %s not enforced after 20 s", name)
}

// watchPods counts the pods created in diagnose namespaces from now on;
// the function it returns stops counting and says how many.
func watchPods(ctx context.Context, t *testing.T) func() int {
	t.Helper()
	w, err := suite.Clientset().CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var n int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added && strings.HasPrefix(p.Namespace, diagnose.NamespacePrefix) {
				n++
			}
		}
	}()
	return func() int {
		time.Sleep(time.Second) // the last events on their way
		w.Stop()
		<-done
		return n
	}
}

// emulateRace starts the lab's race emulator (labagent, profile pre-5.0:
// every clash of the DNS VIP drops) on every node, as a cell of the lab
// does, and stops it when the test ends, checking no rule of it is left.
func emulateRace(ctx context.Context, t *testing.T) {
	t.Helper()
	cs := suite.Clientset()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labrun-e2ediag-emulator"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns.Name, metav1.DeleteOptions{}) })
	svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := images.ImageRef(suite.Lab.Images.LabImage("labagent"))
	if err != nil {
		t.Fatal(err)
	}
	cell := scenario.Cell{ID: "diagnose-emulator", Chaos: scenario.Chaos{RaceEmulator: &scenario.RaceEmulator{Profile: "pre-5.0", Window: scenario.DefaultWindow}}}
	agent, err := chaos.NewAgent(suite.Lab.Cluster, cell, chaos.AgentOptions{
		Run: "e2ediag", Namespace: ns.Name, Image: ref, VIP: svc.Spec.ClusterIP, Replicas: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := agent.Revert(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
	})
	if err := agent.Inject(ctx); err != nil {
		t.Fatal(err)
	}
}

// restrictNamespaces installs a MutatingAdmissionPolicy (GA in Kubernetes
// 1.36) that labels every namespace diagnose makes for PodSecurity
// restricted enforcement, and waits until the API server applies it;
// removed when the test ends.
func restrictNamespaces(ctx context.Context, t *testing.T) {
	t.Helper()
	const name = "labrun-e2ediag-restricted"
	api := suite.Clientset().AdmissionregistrationV1()
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"namespaces"}},
				},
			}}},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{labels: {"pod-security.kubernetes.io/enforce": "restricted"}}}`,
				},
			}},
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: name,
			MatchResources: &admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{diagnose.LabelApp: diagnose.AppDiagnose},
			}},
		},
	}
	bg := context.WithoutCancel(ctx)
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.MutatingAdmissionPolicies().Delete(bg, name, metav1.DeleteOptions{}) })
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labrun-diag-policy-probe", Labels: map[string]string{diagnose.LabelApp: diagnose.AppDiagnose}}}
	labelled := func(ctx context.Context) bool {
		ns, err := suite.Clientset().CoreV1().Namespaces().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && ns.Labels["pod-security.kubernetes.io/enforce"] == "restricted"
	}
	t.Cleanup(func() {
		api.MutatingAdmissionPolicyBindings().Delete(bg, name, metav1.DeleteOptions{})
		// The API server learns of the deletion from an informer: wait
		// until namespaces are made unlabelled again.
		for i := 0; i < 100 && labelled(bg); i++ {
			time.Sleep(200 * time.Millisecond)
		}
	})
	for range 100 {
		if labelled(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("policy %s not applied after 20 s", name)
}
