//go:build e2e

package nodelocaldns

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// prefix names this test's cluster: labrun-e2e-nl-default-nodelocaldns.
const prefix = "labrun-e2e-nl"

func TestE2ENodeLocalDNS(t *testing.T) {
	var (
		run *e2ekit.Run
		c   *cluster.Cluster
	)
	f := features.New("nodelocaldns under the race emulator").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// The cluster is kept so that the test can look at its nodes; it
			// is deleted when the test ends, whatever happened.
			run = e2ekit.RunScenario(ctx, t, "testdata/nodelocaldns.yaml", prefix)
			c = run.Cluster(t, "default+nodelocaldns")
			return ctx
		}).
		Assess("the cache is ready on every node and says what it is", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := c.Client
			ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, addons.NodeLocalName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if int(ds.Status.NumberReady) != len(c.Nodes) {
				t.Errorf("%d of %d cache pods ready", ds.Status.NumberReady, len(c.Nodes))
			}
			which := ds.Annotations[addons.NodeLocalCacheAnnotation]
			image := ds.Spec.Template.Spec.Containers[0].Image
			t.Logf("cache: %s (%s) on %d nodes", which, image, ds.Status.NumberReady)
			if _, stored := images.FindStored(images.DefaultCache(), "registry.k8s.io/dns/k8s-dns-node-cache:1.22.28"); stored != (which == addons.NodeLocalCacheNodeCache) {
				t.Errorf("cache %s, but node-cache in the store: %v", which, stored)
			}
			cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, addons.NodeLocalName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			labdns, err := cs.CoreV1().Services("kube-system").Get(ctx, addons.UpstreamName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cf := cm.Data["Corefile"]; !strings.Contains(cf, "forward . "+labdns.Spec.ClusterIP+"\n") || !strings.Contains(cf, "force_tcp") {
				t.Errorf("Corefile does not forward . to the lab upstream %s and cluster names over TCP:\n%s", labdns.Spec.ClusterIP, cf)
			}
			return ctx
		}).
		Assess("every node holds 169.254.20.10 and the VIP, with the NOTRACK rules", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			kinds, err := addons.NodeLocalCheckNodes(ctx, c, vip(ctx, t, c))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("interface %s: %s", addons.NodeLocalInterface, kinds)
			return ctx
		}).
		Assess("a pod's queries to the VIP are answered with no conntrack entry on its node", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := c.Client
			dnsVIP := vip(ctx, t, c)
			worker := c.Workers()[0].Name
			plan, err := images.Build(ctx, images.Options{Kubernetes: "v1.36.1"}) // built by lab.Run: cached
			if err != nil {
				t.Fatal(err)
			}
			image, err := images.ImageRef(plan.LabImage("probe-glibc"))
			if err != nil {
				t.Fatal(err)
			}
			kube, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Entries toward the VIP, in both flavours of listing (the
			// original direction's destination is the VIP for a tracked
			// query, whether DNATed or not).
			tracked := func() string {
				out, err := c.Exec(ctx, worker, "sh", "-c", "conntrack -L -d "+dnsVIP+" 2>&1; conntrack -S 2>&1 | head -2")
				if err != nil {
					t.Fatalf("conntrack on %s: %v", worker, err)
				}
				return string(out)
			}
			t.Logf("before, on %s:\n%s", worker, tracked())
			// getent asks glibc's resolver, which reads the pod's unchanged
			// resolv.conf: its only nameserver is the VIP.
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "resolve-", Namespace: "default"},
				Spec: corev1.PodSpec{
					NodeName:      worker,
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "resolve", Image: image, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sh", "-c", "cat /etc/resolv.conf && for i in 1 2 3 4 5 6 7 8 9 10; do getent ahostsv4 kubernetes.default | head -1 || exit 1; done"},
					}},
				},
			}
			podName, phase := e2ekit.RunPod(ctx, t, cs, pod)
			out := e2ekit.PodLogs(ctx, t, cs, "default", podName, "resolve")
			t.Logf("pod on %s:\n%s", worker, out)
			if phase != corev1.PodSucceeded {
				t.Errorf("resolving pod ended %s", phase)
			}
			if !strings.Contains(out, "nameserver "+dnsVIP) {
				t.Errorf("resolv.conf does not point at the DNS VIP %s", dnsVIP)
			}
			n := 0 // getent lines "IP STREAM name"; the VIP 10.96.0.10 contains 10.96.0.1
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) == 3 && f[0] == kube.Spec.ClusterIP {
					n++
				}
			}
			if n != 10 {
				t.Errorf("kubernetes.default resolved to %s %d times of 10", kube.Spec.ClusterIP, n)
			}
			after := tracked()
			t.Logf("after, on %s:\n%s", worker, after)
			if strings.Contains(after, "dport=53") {
				t.Errorf("node %s tracked queries to the VIP %s:\n%s", worker, dnsVIP, after)
			}
			if !strings.Contains(after, "0 flow entries") {
				t.Errorf("conntrack -L -d %s on %s did not report 0 entries:\n%s", dnsVIP, worker, after)
			}
			return ctx
		}).
		Assess("the glibc cell under the emulator has no delayed lookup", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			s := run.Summary
			if len(s.Cells) != 1 || s.Totals.Cells[results.Complete] != 1 {
				t.Fatalf("cells by state %v, want 1 complete", s.Totals.Cells)
			}
			cell := s.Cells[0]
			if cell.Stats == nil || cell.Counters == nil || cell.Counters.Emulator == nil || !cell.Emulator {
				t.Fatalf("cell %s: stats %v, counters %v: want both, with the emulator's", cell.ID, cell.Stats, cell.Counters)
			}
			st, emu := cell.Stats, cell.Counters.Emulator
			t.Logf("%s: %d lookups, p50 %.1f ms, p99 %.1f ms, max %.1f ms, ≥1 s %d, ≥5 s %d; emulator seen %d, dropped %d",
				cell.ID, st.Count, st.P50MS, st.P99MS, st.MaxMS, st.AtLeast1s, st.AtLeast5s, emu["seen"], emu[analyze.EmulatorDropped])
			if st.Count < analyze.CleanMinCount {
				t.Errorf("%d lookups, want at least %d", st.Count, analyze.CleanMinCount)
			}
			if st.AtLeast1s > 0 || st.Errors > 0 || st.Timeouts > 0 {
				t.Errorf("%d lookups took ≥ 1 s, %d errors, %d timeouts: want none with the cache", st.AtLeast1s, st.Errors, st.Timeouts)
			}
			if emu[analyze.EmulatorDropped] != 0 {
				t.Errorf("the emulator dropped %d queries: the pods' queries were tracked", emu[analyze.EmulatorDropped])
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func vip(ctx context.Context, t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	svc, err := c.Client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}
