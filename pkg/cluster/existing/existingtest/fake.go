// Package existingtest is the fake existing cluster that the tests of the
// existing-cluster provider (pkg/cluster/existing) and of the runner on it
// (pkg/lab) share: a _test.go file cannot be imported from another package.
// Only tests import it.
package existingtest

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/scenario"
)

// PodFate is what a pod created on the fake cluster does at once.
type PodFate int

const (
	// PodsRun: its containers run (the provider's node pods).
	PodsRun PodFate = iota
	// PodsSucceed: it has run and exited 0 (the runner's probe pods).
	PodsSucceed
)

// Cluster is a lab kind cluster as its API shows it: Kubernetes
// scenario.DefaultKubernetes, one control plane (lab-control-plane) and two
// workers (lab-worker, lab-worker2) holding the lab images, kube-proxy in
// nftables mode, CoreDNS × 2 behind kube-dns, labnet. Its pods meet fate as
// soon as they are created.
func Cluster(fate PodFate) *fake.Clientset {
	node := func(name, ip string, cp bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if cp {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		n.Status.NodeInfo.KernelVersion = "6.1.0-28-amd64"
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"docker.io/labrun/probe-glibc:4f1c2a9e0b7d"}},
			{Names: []string{"docker.io/labrun/probe-musl:9a8b7c6d5e4f"}}, {Names: []string{"docker.io/labrun/labagent:0123456789ab"}}}
		return n
	}
	cs := fake.NewClientset(
		node("lab-control-plane", "172.18.0.2", true), node("lab-worker", "172.18.0.3", false), node("lab-worker2", "172.18.0.4", false),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
			Data: map[string]string{"config.conf": "kind: KubeProxyConfiguration\nmode: nftables\n"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "labnet", Namespace: "kube-system"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-x", Namespace: "kube-system", Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			},
		},
	)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: scenario.DefaultKubernetes}
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		switch fate {
		case PodsRun:
			p.Status.Phase = corev1.PodRunning
			for _, c := range p.Spec.Containers {
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
			}
		case PodsSucceed:
			p.Status.Phase = corev1.PodSucceeded
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
		}
		return false, nil, nil
	})
	return cs
}
