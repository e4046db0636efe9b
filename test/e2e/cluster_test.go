//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

func TestE2ECluster(t *testing.T) {
	nodes := features.New("nodes and cluster DNS").
		Assess("every node is Ready", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			list, err := suite.Clientset().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 3 {
				t.Errorf("%d nodes, want 1 control-plane + 2 workers", len(list.Items))
			}
			for _, n := range list.Items {
				ready := false
				for _, c := range n.Status.Conditions {
					ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
				}
				if !ready {
					t.Errorf("node %s is not Ready", n.Name)
				}
			}
			return ctx
		}).
		Assess("CoreDNS runs 2 ready replicas and forwards to the lab upstream", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := suite.Clientset()
			d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Status.ReadyReplicas != 2 {
				t.Errorf("coredns ready replicas = %d, want 2 (the DNAT race needs two backends)", d.Status.ReadyReplicas)
			}
			cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := "forward . " + suite.Lab.Upstream; !strings.Contains(cm.Data["Corefile"], want) {
				t.Errorf("Corefile does not contain %q (hermetic DNS):\n%s", want, cm.Data["Corefile"])
			}
			return ctx
		}).Feature()

	resolve := features.New("a pod resolves through the cluster DNS service VIP").
		Assess("glibc getaddrinfo resolves an in-cluster and an outside-zone name", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := suite.Clientset()
			svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			vip := svc.Spec.ClusterIP
			image, err := images.ImageRef(suite.Lab.Images.LabImage("probe-glibc"))
			if err != nil {
				t.Fatal(err)
			}
			external := "api." + strings.TrimSuffix(addons.Zone, ".")
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "resolve-", Namespace: "default"},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					InitContainers: []corev1.Container{{
						Name: "resolvconf", Image: image, ImagePullPolicy: corev1.PullNever,
						Command: []string{"cat", "/etc/resolv.conf"},
					}},
					Containers: []corev1.Container{{
						Name: "probe", Image: image, ImagePullPolicy: corev1.PullNever,
						Args: []string{"--backend", "glibc", "--count", "4", "--concurrency", "1",
							"--names", "short:kubernetes.default.svc.cluster.local,external:" + external},
					}},
				},
			}
			name, _ := e2ekit.RunPod(ctx, t, cs, pod) // a failed probe says why in its logs
			resolv := e2ekit.PodLogs(ctx, t, cs, "default", name, "resolvconf")
			if !strings.Contains(resolv, "nameserver "+vip) {
				t.Errorf("pod resolv.conf does not point at the DNS service VIP %s:\n%s", vip, resolv)
			}
			out := e2ekit.PodLogs(ctx, t, cs, "default", name, "probe")
			dec := sample.NewDecoder(strings.NewReader(out))
			ok := map[string]int{}
			var summary *sample.Summary
			for {
				s, sum, err := dec.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("probe output: %v\n%s", err, out)
				}
				if sum != nil {
					summary = sum
					continue
				}
				if s.Result == sample.OK && s.Answers > 0 {
					ok[s.Name]++
				} else {
					t.Errorf("lookup of %s: %s %s", s.Name, s.Result, s.ErrorText)
				}
			}
			if summary == nil || summary.Lookups != 4 {
				t.Errorf("probe summary %+v, want 4 lookups", summary)
			}
			for _, n := range []string{"kubernetes.default.svc.cluster.local", external} {
				if ok[n] == 0 {
					t.Errorf("%s never resolved; output:\n%s", n, out)
				}
			}
			return ctx
		}).Feature()

	counters := features.New("node counters").
		Assess("nf_conntrack stats are read from every node, summed over CPUs", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, n := range suite.Lab.Cluster.Nodes {
				raw, err := suite.Lab.Cluster.Exec(ctx, n.Name, "cat", "/proc/net/stat/nf_conntrack")
				if err != nil {
					t.Fatal(err)
				}
				st, err := collect.ParseConntrackStat(bytes.NewReader(raw))
				if err != nil {
					t.Fatalf("node %s: %v", n.Name, err)
				}
				for _, col := range []string{"entries", "insert_failed", "clashres", "drop"} {
					if _, ok := st[col]; !ok {
						t.Errorf("node %s: no %s column in /proc/net/stat/nf_conntrack", n.Name, col)
					}
				}
				if st["entries"] == 0 {
					t.Errorf("node %s: 0 conntrack entries on a running node", n.Name)
				}
				t.Logf("node %s: entries=%d insert_failed=%d clashres=%d", n.Name, st["entries"], st["insert_failed"], st["clashres"])
			}
			return ctx
		}).Feature()

	suite.Env.Test(t, nodes, resolve, counters)
}
