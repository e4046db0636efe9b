package addons

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"

	"labrun.dev/labrun/pkg/cluster"
)

func TestDnsmasqDeployment(t *testing.T) {
	d := DnsmasqDeployment("docker.io/labrun/dnsmasq:abc", "10.96.33.44", 3)
	if *d.Spec.Replicas != 3 || d.Namespace != "kube-system" || d.Name != "dnsmasq" {
		t.Errorf("deployment %s/%s replicas %d", d.Namespace, d.Name, *d.Spec.Replicas)
	}
	pod := labels.Set(d.Spec.Template.Labels)
	// CoreDNS's pods carry k8s-app=kube-dns: the VIP must not select them,
	// and coredns-upstream must not select dnsmasq.
	if labels.SelectorFromSet(map[string]string{"k8s-app": "kube-dns"}).Matches(pod) {
		t.Errorf("dnsmasq pods %v match CoreDNS's selector k8s-app=kube-dns", pod)
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(pod) {
		t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector.MatchLabels, pod)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullNever || c.Image != "docker.io/labrun/dnsmasq:abc" {
		t.Errorf("image %s pull %s", c.Image, c.ImagePullPolicy)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-k", "--no-resolv", "--server=10.96.33.44#53", "--cache-size=1000", "--no-negcache", "--log-facility=-"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	for _, bad := range []string{"--interface", "--listen-address", "--bind"} {
		if strings.Contains(args, bad) {
			t.Errorf("args %q restrict where dnsmasq listens (%s)", args, bad)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil {
		t.Error("no readiness probe on port 53")
	}
}

func readyPod(name, app string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{"k8s-app": app}},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func vipSlice(name string, pods ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	yes := true
	for _, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{"10.244.1.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p, Namespace: "kube-system"},
		})
	}
	return s
}

func TestMoveVIPAndEndpoints(t *testing.T) {
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"k8s-app": "kube-dns"}, ClusterIP: "10.96.0.10"},
	}
	cs := fake.NewClientset(svc, readyPod("dnsmasq-a", DnsmasqApp), readyPod("dnsmasq-b", DnsmasqApp), readyPod("coredns-x", "kube-dns"),
		vipSlice("kube-dns-1", "dnsmasq-a", "coredns-x"))
	if err := moveVIP(ctx, cs); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Selector) != 1 || got.Spec.Selector["k8s-app"] != DnsmasqApp {
		t.Errorf("kube-dns selector %v, want k8s-app=%s only", got.Spec.Selector, DnsmasqApp)
	}
	// A CoreDNS pod still behind the VIP (the endpoints not yet updated) is
	// not accepted.
	_, err = waitVIPEndpoints(ctx, cs, 2, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "coredns-x") {
		t.Fatalf("endpoints with a CoreDNS pod accepted: %v", err)
	}
	if err := cs.DiscoveryV1().EndpointSlices("kube-system").Delete(ctx, "kube-dns-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, vipSlice("kube-dns-2", "dnsmasq-b", "dnsmasq-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods, err := waitVIPEndpoints(ctx, cs, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pods, []string{"dnsmasq-a", "dnsmasq-b"}) {
		t.Errorf("VIP pods %v", pods)
	}
	// Fewer ready dnsmasq pods than replicas is not accepted either.
	if _, err := waitVIPEndpoints(ctx, cs, 3, 1500*time.Millisecond); err == nil {
		t.Error("2 dnsmasq pods accepted for 3 replicas")
	}
}

func TestDnsmasqCoreDNSRefuses(t *testing.T) {
	if err := DnsmasqCoreDNS(context.Background(), Env{Cluster: &cluster.Cluster{Client: fake.NewClientset()}}, 0); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("0 replicas: %v", err)
	}
	if err := DnsmasqCoreDNS(context.Background(), Env{Cluster: &cluster.Cluster{Client: fake.NewClientset()}}, 2); err == nil || !strings.Contains(err.Error(), "image plan") {
		t.Errorf("no image plan: %v", err)
	}
}
