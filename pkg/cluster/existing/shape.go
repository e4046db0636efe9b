package existing

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/clusterfacts"
)

const system = "kube-system"

// ReadShape reads a cluster's shape with get and list calls only, through
// the readers `labrun diagnose` uses (pkg/clusterfacts). A fact that cannot
// be read is a NotRead line; only an API server that cannot be reached is
// an error. The lab images are looked for among the images the nodes hold,
// else named in registry (with tag).
func ReadShape(ctx context.Context, cs kubernetes.Interface, registry, tag string) (cluster.Shape, error) {
	var s cluster.Shape
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return s, fmt.Errorf("existing cluster: reach the API server: %w", err)
	}
	s.Kubernetes = v.GitVersion
	var held []string // the images the nodes hold
	notRead := func(what string, err error) bool {
		if err == nil {
			return false
		}
		if !apierrors.IsNotFound(err) {
			s.NotRead = append(s.NotRead, fmt.Sprintf("%s: %v", what, err))
		}
		return true
	}

	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !notRead("list nodes", err) {
		s.Kernels = map[string]string{}
		for _, n := range nodes.Items {
			for _, img := range n.Status.Images {
				held = append(held, img.Names...)
			}
			s.Kernels[n.Name] = n.Status.NodeInfo.KernelVersion
			if !nodeReady(n) {
				continue
			}
			if isControlPlane(n) {
				s.ControlPlanes++
			} else {
				s.Workers++
			}
		}
	}

	cms := map[string]*corev1.ConfigMap{}
	for _, name := range []string{"kube-proxy", "kube-proxy-config"} {
		if cm, err := cs.CoreV1().ConfigMaps(system).Get(ctx, name, metav1.GetOptions{}); !notRead("get configmap kube-system/"+name, err) {
			cms[name] = cm
		}
	}
	var proxyDS *appsv1.DaemonSet
	var proxyPods []corev1.Pod
	if ds, err := cs.AppsV1().DaemonSets(system).Get(ctx, "kube-proxy", metav1.GetOptions{}); !notRead("get daemonset kube-system/kube-proxy", err) {
		proxyDS = ds
	} else if pods, err := cs.CoreV1().Pods(system).List(ctx, metav1.ListOptions{LabelSelector: "component=kube-proxy", Limit: 1}); !notRead("list kube-proxy static pods", err) {
		proxyPods = pods.Items
	}
	kp := clusterfacts.KubeProxyMode(cms, clusterfacts.KubeProxySpec(proxyDS, proxyPods))
	s.KubeProxyMode, s.KubeProxySource = kp.Mode, kp.Source

	var svc *corev1.Service
	if got, err := cs.CoreV1().Services(system).Get(ctx, "kube-dns", metav1.GetOptions{}); !notRead("get service kube-system/kube-dns", err) {
		svc = got
	}
	var eps []discoveryv1.EndpointSlice
	if list, err := cs.DiscoveryV1().EndpointSlices(system).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"}); !notRead("list endpointslices of kube-dns", err) {
		eps = list.Items
	}
	dns := clusterfacts.DNSEndpoints(svc, eps)
	s.DNSVIP, s.DNSEndpoints = dns.VIP, dns.Ready
	for _, server := range []string{"coredns", "kube-dns"} {
		if _, err := cs.AppsV1().Deployments(system).Get(ctx, server, metav1.GetOptions{}); !notRead("get deployment kube-system/"+server, err) {
			s.DNSServer = server
			break
		}
	}

	if list, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); !notRead("list daemonsets", err) {
		for _, c := range clusterfacts.FindCNIs(list.Items) {
			if !slices.Contains(s.PodNetworks, c.Name) {
				s.PodNetworks = append(s.PodNetworks, c.Name)
			}
		}
	}
	s.LabImages = resolveImages(held, registry, tag)
	return s, nil
}
