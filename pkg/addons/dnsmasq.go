package addons

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

const (
	// DnsmasqName names the Deployment of the dnsmasq cache (dns.server
	// dnsmasq-coredns).
	DnsmasqName = "dnsmasq"
	// DnsmasqApp is the k8s-app label of the dnsmasq pods, which the
	// kube-dns Service selects once the VIP is moved to them. It differs
	// from CoreDNS's k8s-app=kube-dns so the VIP's endpoints are dnsmasq
	// only.
	DnsmasqApp = "kube-dns-dnsmasq"
	// CoreDNSUpstreamName is the Service in front of the CoreDNS pods that
	// dnsmasq forwards to.
	CoreDNSUpstreamName = "coredns-upstream"
	// ClusterDNSService is kubeadm's Service of the cluster DNS VIP.
	ClusterDNSService = "kube-dns"
	coreDNSApp        = "kube-dns" // kubeadm's k8s-app label of the CoreDNS pods
)

// DnsmasqArgs are dnsmasq's flags as kube-dns runs its dnsmasq: in the
// foreground, no resolv.conf, one upstream (CoreDNS behind upstream), a
// 1000-entry cache with no negative caching, logs to stderr; it listens on
// every interface (dnsmasq's default).
func DnsmasqArgs(upstream string) []string {
	return []string{
		"-k",
		"--no-resolv",
		"--server=" + upstream + "#53",
		"--cache-size=1000",
		"--no-negcache",
		"--log-facility=-",
	}
}

// DnsmasqCoreDNS makes the cluster DNS a dnsmasq cache in front of CoreDNS,
// the way kube-dns used its dnsmasq: a Deployment of replicas dnsmasq pods
// (Debian's dnsmasq, image plan.AddonImage("dnsmasq")) takes over the
// kube-dns Service's VIP (so the DNAT race's backends are the dnsmasq pods)
// and forwards to CoreDNS through a new Service coredns-upstream. It returns
// once dnsmasq is ready and the VIP's endpoints are exactly its pods.
func DnsmasqCoreDNS(ctx context.Context, env Env, replicas int) error {
	if replicas < 1 {
		return fmt.Errorf("dnsmasq-coredns: replicas %d; valid: 1 or more", replicas)
	}
	if env.Images == nil {
		return fmt.Errorf("dnsmasq-coredns: no image plan")
	}
	step := env.Images.AddonImage("dnsmasq")
	if step == nil {
		return fmt.Errorf("dnsmasq-coredns: the image plan has no dnsmasq image")
	}
	image, err := images.ImageRef(step)
	if err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	cs := env.Cluster.Client
	start := time.Now()
	upstream, err := coreDNSUpstream(ctx, cs)
	if err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	d := DnsmasqDeployment(image, upstream, int32(replicas))
	if _, err := apply(ctx, cs.AppsV1().Deployments(namespace), d); err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	if err := cluster.WaitDeployment(ctx, cs, namespace, DnsmasqName, timeout); err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	if err := moveVIP(ctx, cs); err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	pods, err := waitVIPEndpoints(ctx, cs, replicas, time.Minute)
	if err != nil {
		return fmt.Errorf("dnsmasq-coredns: %w", err)
	}
	if env.Progress != nil {
		fmt.Fprintf(env.Progress, "dns: dnsmasq (%d replicas: %s) behind the %s VIP, forwarding to %s %s (%s)\n",
			replicas, strings.Join(pods, ", "), ClusterDNSService, CoreDNSUpstreamName, upstream, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// coreDNSUpstream applies the Service in front of the CoreDNS pods and
// returns its cluster IP.
func coreDNSUpstream(ctx context.Context, cs kubernetes.Interface) (string, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: CoreDNSUpstreamName, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "labrun"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"k8s-app": coreDNSApp},
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	created, err := apply(ctx, cs.CoreV1().Services(namespace), svc)
	if err != nil {
		return "", err
	}
	if created.Spec.ClusterIP == "" || created.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("service %s has no cluster IP", CoreDNSUpstreamName)
	}
	return created.Spec.ClusterIP, nil
}

// DnsmasqDeployment is the dnsmasq cache: replicas pods labelled
// k8s-app=kube-dns-dnsmasq, spread over nodes when they can be, forwarding
// to upstream.
func DnsmasqDeployment(image, upstream string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"k8s-app": DnsmasqApp}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DnsmasqName, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-cluster-critical",
					DNSPolicy:         corev1.DNSDefault,
					Tolerations:       serverTolerations(),
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
								TopologyKey:   "kubernetes.io/hostname",
							},
						}},
					}},
					Containers: []corev1.Container{{
						Name:            DnsmasqName,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            DnsmasqArgs(upstream),
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(53)}},
							PeriodSeconds: 2,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("10m"),
							corev1.ResourceMemory: resource.MustParse("20Mi"),
						}},
					}},
				},
			},
		},
	}
}

// moveVIP points the kube-dns Service (the VIP pods use) at the dnsmasq
// pods.
func moveVIP(ctx context.Context, cs kubernetes.Interface) error {
	svcs := cs.CoreV1().Services(namespace)
	svc, err := svcs.Get(ctx, ClusterDNSService, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("service %s: %w", ClusterDNSService, err)
	}
	want := map[string]string{"k8s-app": DnsmasqApp}
	if len(svc.Spec.Selector) == 1 && svc.Spec.Selector["k8s-app"] == DnsmasqApp {
		return nil
	}
	svc.Spec.Selector = want
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("point service %s at dnsmasq: %w", ClusterDNSService, err)
	}
	return nil
}

// VIPEndpoints are the pods behind the kube-dns Service's ready endpoints,
// sorted, and whether any endpoint is not a pod.
func VIPEndpoints(ctx context.Context, cs kubernetes.Interface) (pods []string, others int, err error) {
	slices2, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + ClusterDNSService,
	})
	if err != nil {
		return nil, 0, err
	}
	seen := map[string]bool{}
	for _, s := range slices2.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				others++
				continue
			}
			seen[e.TargetRef.Name] = true
		}
	}
	for p := range seen {
		pods = append(pods, p)
	}
	sort.Strings(pods)
	return pods, others, nil
}

// waitVIPEndpoints waits until the VIP's ready endpoints are exactly the
// replicas ready dnsmasq pods (no CoreDNS pod left behind it).
func waitVIPEndpoints(ctx context.Context, cs kubernetes.Interface, replicas int, limit time.Duration) ([]string, error) {
	var last string
	var pods []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, limit, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=" + DnsmasqApp})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var want []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				want = append(want, p.Name)
			}
		}
		sort.Strings(want)
		got, others, err := VIPEndpoints(ctx, cs)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("endpoints %v (+%d not pods), ready dnsmasq pods %v", got, others, want)
		pods = got
		return len(want) == replicas && others == 0 && slices.Equal(got, want), nil
	})
	if err != nil {
		return nil, fmt.Errorf("the %s VIP's endpoints are not the %d dnsmasq pods after %s: %s", ClusterDNSService, replicas, limit, last)
	}
	return pods, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
