package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestDaemonSetReady(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, ready, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
				UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: available},
		}
	}
	for _, c := range []struct {
		name  string
		d     *appsv1.DaemonSet
		nodes int
		want  bool
	}{
		{"all ready", ds(1, 1, 3, 3, 3, 3), 3, true},
		{"one not ready", ds(1, 1, 3, 3, 2, 2), 3, false},
		{"not on every node", ds(1, 1, 2, 2, 2, 2), 3, false},
		{"status of an older spec", ds(2, 1, 3, 3, 3, 3), 3, false},
		{"old pods still running", ds(1, 1, 3, 2, 3, 3), 3, false},
		{"any number of nodes: all it is scheduled to", ds(1, 1, 2, 2, 2, 2), 0, true},
		{"any number of nodes, but none scheduled yet", ds(1, 1, 0, 0, 0, 0), 0, false},
	} {
		if got := daemonSetReady(c.d, c.nodes); got != c.want {
			t.Errorf("%s: ready %v, want %v", c.name, got, c.want)
		}
	}
}

// A timeout names the nodes it waited for and what each pod waits for.
func TestWaitDaemonSetTimesOutWithReason(t *testing.T) {
	ctx := context.Background()
	labels := map[string]string{"app": "x"}
	cs := fake.NewClientset(
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "kube-system"},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x-1", Namespace: "kube-system", Labels: labels},
			Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "c",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}}}}}},
	)
	err := WaitDaemonSet(ctx, cs, "kube-system", "x", 3, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready on 3 nodes") || !strings.Contains(err.Error(), "pod x-1 on w1, container c: CrashLoopBackOff") {
		t.Errorf("err %v: want a timeout saying it is not ready on 3 nodes, and why pod x-1 is not", err)
	}
	ds, _ := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "x", metav1.GetOptions{})
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 3, NumberAvailable: 3}
	if _, err := cs.AppsV1().DaemonSets("kube-system").UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WaitDaemonSet(ctx, cs, "kube-system", "x", 3, 5*time.Second); err != nil {
		t.Errorf("ready daemon set: %v", err)
	}
}

func TestMissingRoutes(t *testing.T) {
	node := func(name, cidr, ip string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeInternalIP, Address: "fc00:f853::3"}}}}
	}
	nodes := []corev1.Node{
		node("cp", "10.244.0.0/24", "172.22.0.6"),
		node("w1", "10.244.3.0/24", "172.22.0.3"),
		node("w2", "10.244.2.0/24", "172.22.0.5"),
	}
	// What `ip -4 route show` printed on a control plane of this lab.
	const all = `default via 172.22.0.1 dev eth0
10.244.0.4 dev veth3f191356 scope host
10.244.2.0/24 via 172.22.0.5 dev eth0
10.244.3.0/24 via 172.22.0.3 dev eth0
172.22.0.0/16 dev eth0 proto kernel scope link src 172.22.0.6
`
	for _, tc := range []struct {
		name, routes string
		nodes        []corev1.Node
		want         []string
	}{
		{"every route", all, nodes, nil},
		{"a node's route missing", strings.Replace(all, "10.244.2.0/24 via 172.22.0.5 dev eth0\n", "", 1), nodes,
			[]string{"cp has no route 10.244.2.0/24 via 172.22.0.5 (to w2)"}},
		{"through the wrong node", strings.Replace(all, "10.244.2.0/24 via 172.22.0.5", "10.244.2.0/24 via 172.22.0.3", 1), nodes,
			[]string{"cp has no route 10.244.2.0/24 via 172.22.0.5 (to w2)"}},
		{"a node without its pod CIDR yet", all, append(nodes, node("w3", "", "172.22.0.7")),
			[]string{"cp has no route  via 172.22.0.7 (to w3)"}},
	} {
		got := missingRoutes(tc.routes, "cp", tc.nodes)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// With DNSRewired the first CoreDNS pods are not waited for (the caller
// restarts them at once), but CoreDNS is still scaled; without it, CoreDNS
// not ready is waited for.
func TestWaitReadyRewired(t *testing.T) {
	for _, rewired := range []bool{true, false} {
		one := int32(1)
		cs := fake.NewSimpleClientset(
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
				Spec: appsv1.DeploymentSpec{Replicas: &one}}, // no pod ready
		)
		c := &Cluster{Name: "labrun-x", Client: cs, Nodes: []Node{{Name: "n1"}}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := WaitReady(ctx, c, 2, rewired, &strings.Builder{})
		cancel()
		if rewired != (err == nil) {
			t.Errorf("rewired %v: err = %v", rewired, err)
		}
		d, _ := cs.AppsV1().Deployments("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
		if *d.Spec.Replicas != 2 {
			t.Errorf("rewired %v: coredns replicas %d, want 2", rewired, *d.Spec.Replicas)
		}
	}
}

// CoreDNS counts as ready once its Deployment says so and the DNS Service's
// EndpointSlices list as many ready endpoints (terminating, unready and
// repeated addresses do not count).
func TestWaitCoreDNSWaitsForEndpoints(t *testing.T) {
	ready, unready := true, false
	ep := func(addr string, r *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: r}}
	}
	for _, tc := range []struct {
		name      string
		endpoints []discoveryv1.Endpoint
		ok        bool
	}{
		{"both new pods behind the address", []discoveryv1.Endpoint{ep("10.244.1.3", &ready), ep("10.244.2.3", &ready), ep("10.244.0.2", &unready)}, true},
		{"one of two", []discoveryv1.Endpoint{ep("10.244.1.3", &ready), ep("10.244.2.3", &unready), ep("10.244.0.2", &unready)}, false},
		{"one address twice", []discoveryv1.Endpoint{ep("10.244.1.3", &ready), ep("10.244.1.3", &ready)}, false},
		{"no slice yet", nil, false},
	} {
		two := int32(2)
		objs := []runtime.Object{&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Generation: 2},
			Spec:       appsv1.DeploymentSpec{Replicas: &two},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2},
		}}
		if tc.endpoints != nil {
			objs = append(objs, &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-x", Namespace: "kube-system",
					Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
				Endpoints: tc.endpoints,
			})
		}
		err := WaitCoreDNS(context.Background(), fake.NewSimpleClientset(objs...), 1500*time.Millisecond)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "kube-system/kube-dns") {
			t.Errorf("%s: %v: want the service named", tc.name, err)
		}
	}
}
