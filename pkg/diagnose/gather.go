package diagnose

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SystemNamespace holds the cluster's DNS, kube-proxy and most pod networks.
const SystemNamespace = "kube-system"

// gatherer collects facts; a read that is refused or fails is a NotRead
// line, never the end of the diagnosis: every fact that could be read is
// still worth reporting.
type gatherer struct {
	ctx context.Context
	cs  kubernetes.Interface
	f   *Facts
}

// read reports whether err is nil; NotFound is an absent object, not a
// problem; anything else becomes a NotRead line naming the cost.
func (g *gatherer) read(what, cost string, err error) bool {
	switch {
	case err == nil:
		return true
	case apierrors.IsNotFound(err):
		return false
	case apierrors.IsForbidden(err):
		g.f.NotRead = append(g.f.NotRead, fmt.Sprintf("%s: forbidden: %s", what, cost))
	default:
		g.f.NotRead = append(g.f.NotRead, fmt.Sprintf("%s: %v: %s", what, err, cost))
	}
	return false
}

// Gather reads every fact with get and list calls only. It fails only when
// the API server cannot be reached at all.
func Gather(ctx context.Context, cs kubernetes.Interface) (Facts, error) {
	var f Facts
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return f, fmt.Errorf("reach the API server: %w", err)
	}
	f.Kubernetes = v.GitVersion
	g := &gatherer{ctx: ctx, cs: cs, f: &f}
	g.nodes()
	cms := g.configMaps("kube-proxy", "kube-proxy-config", "coredns", CustomCorefileMap, "cilium-config", "kubelet-config")
	proxyDS, proxyPods := g.kubeProxy()
	f.KubeProxy = KubeProxyMode(cms, kubeProxySpec(proxyDS, proxyPods))
	f.DNS = g.dns()
	if cm := cms["coredns"]; cm != nil {
		c := WithCustom(ParseCorefile(cm.Data["Corefile"]), cms[CustomCorefileMap])
		f.CoreDNS = &c
	}
	f.Cilium = CiliumConfig(cms["cilium-config"])
	if k, err := KubeletClusterDNS(cms["kubelet-config"]); err != nil {
		f.NotRead = append(f.NotRead, err.Error())
	} else {
		f.Kubelet = k
	}
	daemonSets := g.daemonSets()
	f.CNIs = FindCNIs(daemonSets)
	f.NodeLocal = g.nodeLocal(daemonSets, f.DNS.VIP)
	return f, nil
}

func (g *gatherer) nodes() {
	list, err := g.cs.CoreV1().Nodes().List(g.ctx, metav1.ListOptions{})
	if !g.read("list nodes", "no kernel versions, so no per-node prediction, and no probe pods pinned per node", err) {
		return
	}
	for _, n := range list.Items {
		g.f.Nodes = append(g.f.Nodes, NodeFacts(n))
	}
}

// configMaps gets kube-system ConfigMaps by name (get, not list: a role may
// grant named ConfigMaps only).
func (g *gatherer) configMaps(names ...string) map[string]*corev1.ConfigMap {
	out := map[string]*corev1.ConfigMap{}
	for _, name := range names {
		cm, err := g.cs.CoreV1().ConfigMaps(SystemNamespace).Get(g.ctx, name, metav1.GetOptions{})
		if g.read("get configmap kube-system/"+name, configMapCost[name], err) {
			out[name] = cm
		}
	}
	return out
}

var configMapCost = map[string]string{
	"kube-proxy":        "kube-proxy's mode unknown (kubeadm, kind)",
	"kube-proxy-config": "kube-proxy's mode unknown (EKS)",
	"coredns":           "no Corefile facts (autopath, cache, forward)",
	CustomCorefileMap:   "the Corefile's imported parts (AKS) not seen",
	"cilium-config":     "Cilium's kube-proxy replacement unknown",
	"kubelet-config":    "the kubelet's clusterDNS unknown",
}

func (g *gatherer) kubeProxy() (*appsv1.DaemonSet, []corev1.Pod) {
	ds, err := g.cs.AppsV1().DaemonSets(SystemNamespace).Get(g.ctx, "kube-proxy", metav1.GetOptions{})
	if g.read("get daemonset kube-system/kube-proxy", "kube-proxy's flags unknown", err) {
		return ds, nil
	}
	// GKE runs kube-proxy as static pods (labelled component=kube-proxy).
	pods, err := g.cs.CoreV1().Pods(SystemNamespace).List(g.ctx, metav1.ListOptions{LabelSelector: "component=kube-proxy", Limit: 1})
	if g.read("list pods kube-system component=kube-proxy", "kube-proxy static pods (GKE) not seen", err) {
		return nil, pods.Items
	}
	return nil, nil
}

func (g *gatherer) dns() DNSService {
	svc, err := g.cs.CoreV1().Services(SystemNamespace).Get(g.ctx, "kube-dns", metav1.GetOptions{})
	if !g.read("get service kube-system/kube-dns", "the cluster DNS VIP unknown", err) {
		svc = nil
	}
	var slices_ []discoveryv1.EndpointSlice
	list, err := g.cs.DiscoveryV1().EndpointSlices(SystemNamespace).List(g.ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"})
	if g.read("list endpointslices kube-system/kube-dns", "the number of DNS backends unknown (the race needs ≥ 2)", err) {
		slices_ = list.Items
	}
	d := DNSEndpoints(svc, slices_)
	for _, server := range []string{"coredns", "kube-dns"} {
		_, err := g.cs.AppsV1().Deployments(SystemNamespace).Get(g.ctx, server, metav1.GetOptions{})
		if g.read("get deployment kube-system/"+server, "which DNS server runs is unknown", err) {
			d.Server = server
			break
		}
	}
	return d
}

// daemonSets lists DaemonSets in every namespace (pod networks live in
// calico-system, kube-flannel…), falling back to kube-system alone.
func (g *gatherer) daemonSets() []appsv1.DaemonSet {
	list, err := g.cs.AppsV1().DaemonSets("").List(g.ctx, metav1.ListOptions{})
	if err == nil {
		return list.Items
	}
	if !apierrors.IsForbidden(err) {
		g.read("list daemonsets", "no pod network or NodeLocal DNSCache facts", err)
		return nil
	}
	list, err2 := g.cs.AppsV1().DaemonSets(SystemNamespace).List(g.ctx, metav1.ListOptions{})
	if !g.read("list daemonsets in kube-system", "no pod network or NodeLocal DNSCache facts", err2) {
		return nil
	}
	g.f.NotRead = append(g.f.NotRead, "list daemonsets in every namespace: forbidden: pod networks outside kube-system (calico-system, kube-flannel) not seen")
	return list.Items
}

func (g *gatherer) nodeLocal(daemonSets []appsv1.DaemonSet, vip string) *NodeLocal {
	i := slices.IndexFunc(daemonSets, func(ds appsv1.DaemonSet) bool { return slices.Contains(nodeLocalNames, ds.Name) })
	if i < 0 {
		return nil
	}
	ds := daemonSets[i]
	cms := map[string]*corev1.ConfigMap{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm, err := g.cs.CoreV1().ConfigMaps(ds.Namespace).Get(g.ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if g.read(fmt.Sprintf("get configmap %s/%s", ds.Namespace, v.ConfigMap.Name), "NodeLocal DNSCache's Corefile (force_tcp, bind) unknown", err) {
			cms[cm.Name] = cm
		}
	}
	return FindNodeLocal([]appsv1.DaemonSet{ds}, cms, vip)
}

// NotReadSummary joins the NotRead lines for one-line messages.
func (f Facts) NotReadSummary() string { return strings.Join(f.NotRead, "; ") }
