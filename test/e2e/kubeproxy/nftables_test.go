//go:build e2e

package kubeproxy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

func TestE2EKubeProxyNftables(t *testing.T) {
	f := features.New("kube-proxy in nftables mode").
		Assess("kube-proxy is configured for nftables and programs nftables, not iptables", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := suite.Clientset()
			cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if conf := cm.Data["config.conf"]; !strings.Contains(conf, `mode: nftables`) {
				t.Errorf("kube-proxy configuration has no `mode: nftables`:\n%s", conf)
			}
			for _, n := range suite.Lab.Cluster.Nodes {
				rules, err := suite.Lab.Cluster.Exec(ctx, n.Name, "nft", "list", "table", "ip", "kube-proxy")
				if err != nil {
					t.Errorf("node %s: kube-proxy's nftables table: %v", n.Name, err)
					continue
				}
				if !strings.Contains(string(rules), "services") {
					t.Errorf("node %s: table ip kube-proxy has no services map:\n%s", n.Name, rules)
				}
				// iptables mode would have made the KUBE-SERVICES chain.
				if out, err := suite.Lab.Cluster.Exec(ctx, n.Name, "iptables-save", "-t", "nat"); err == nil && strings.Contains(string(out), "KUBE-SERVICES") {
					t.Errorf("node %s: iptables KUBE-SERVICES chain present: kube-proxy ran in iptables mode", n.Name)
				}
			}
			return ctx
		}).
		Assess("a pod resolves kubernetes.default through the DNS service VIP", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cs := suite.Clientset()
			svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			image, err := images.ImageRef(suite.Lab.Images.LabImage("probe-glibc"))
			if err != nil {
				t.Fatal(err)
			}
			// getent asks glibc's resolver, which reads the pod's resolv.conf:
			// the only nameserver there is the VIP, so an answer went through
			// kube-proxy's nftables DNAT.
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "resolve-", Namespace: "default"},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "resolve", Image: image, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sh", "-c", "cat /etc/resolv.conf && getent ahostsv4 kubernetes.default"},
					}},
				},
			}
			name, phase := e2ekit.RunPod(ctx, t, cs, pod)
			out := e2ekit.PodLogs(ctx, t, cs, "default", name, "resolve")
			t.Logf("DNS VIP %s; pod output:\n%s", svc.Spec.ClusterIP, out)
			if phase != corev1.PodSucceeded {
				t.Errorf("resolving pod ended %s", phase)
			}
			if !strings.Contains(out, "nameserver "+svc.Spec.ClusterIP) {
				t.Errorf("resolv.conf does not point at the DNS VIP %s", svc.Spec.ClusterIP)
			}
			kube, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, kube.Spec.ClusterIP) {
				t.Errorf("kubernetes.default did not resolve to %s", kube.Spec.ClusterIP)
			}
			return ctx
		}).Feature()
	suite.Env.Test(t, f)
}
