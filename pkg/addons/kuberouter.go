package addons

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

// kube-router's names and the places it uses on a node.
const (
	kubeRouterName = "kube-router"
	// KubeRouterCNIConf is the CNI configuration kube-router's init
	// container installs on each node; kube-router itself then fills in the
	// node's pod CIDR (host-local's ranges) and the bridge MTU.
	KubeRouterCNIConf = "/etc/cni/net.d/10-kuberouter.conflist"
	// KubeRouterBridge is the Linux bridge the pods of a node are plugged into.
	KubeRouterBridge     = "kube-bridge"
	kubeRouterHealthPort = 20244
	// KubeRouterRouteProto is the protocol number kube-router marks the
	// routes it injects with (0x11, its zebraRouteOriginator).
	KubeRouterRouteProto = "17"
	kubeRouterCNIKey     = "cni-conf.json"
	// kubeRouterReadyTimeout bounds the wait for the DaemonSet and for the
	// routes BGP brings to every node.
	kubeRouterReadyTimeout = 3 * time.Minute
)

// KubeRouterRoutesCommand lists, on a node, the IPv4 routes kube-router
// programmed (and only those).
var KubeRouterRoutesCommand = []string{"ip", "-4", "route", "show", "proto", KubeRouterRouteProto}

// KubeRouterArgs are kube-router's flags in the lab: it routes pod CIDRs
// between nodes over iBGP (full mesh) and enforces network policies;
// kube-proxy stays the service proxy, in the mode the scenario asks for. It
// finds the API server through in-cluster configuration, i.e. the kubernetes
// Service VIP, which kube-proxy programs on every node without any CNI.
var KubeRouterArgs = []string{
	"--run-router=true",
	"--run-firewall=true",
	"--run-service-proxy=false",
	"--bgp-graceful-restart=true",
}

// kubeRouter is the kube-router pod network (podNetwork: kube-router):
// cloudnativelabs/kube-router built from its Go module (images.Plan.Addons).
type kubeRouter struct {
	image   string // repo:tag of the built image
	tarball string // its docker-loadable tarball, loaded into the nodes by Install
}

var _ cluster.PodNetwork = (*kubeRouter)(nil)

// KubeRouter returns the kube-router pod network made of the plan's
// kube-router image, which must have been built.
func KubeRouter(plan *images.Plan) (cluster.PodNetwork, error) {
	s := plan.AddonImage(kubeRouterName)
	if s == nil {
		return nil, fmt.Errorf("podNetwork kube-router: image kube-router is not in the image plan")
	}
	ref, err := images.ImageRef(s)
	if err != nil {
		return nil, fmt.Errorf("podNetwork kube-router: %w", err)
	}
	return &kubeRouter{image: ref, tarball: images.ImageTar(s)}, nil
}

func (k *kubeRouter) Name() string { return kubeRouterName }

// PodSubnet is kind's default (10.244.0.0/16): kube-router takes each node's
// pod CIDR from the Node object, as kube-controller-manager allocates it.
func (k *kubeRouter) PodSubnet() string { return "" }

// Install loads the image into every node (the nodes cannot become Ready,
// and so cannot run pods, before a pod network is there: the image must be
// in place first), reads the nodes' pod CIDRs, applies kube-router's
// objects (each node's conflist among them), waits until its DaemonSet
// is ready on every node and until BGP has programmed, on every node, a
// route to every other node's pod CIDR.
func (k *kubeRouter) Install(ctx context.Context, c *cluster.Cluster) error {
	if err := c.LoadImage(ctx, k.tarball); err != nil {
		return err
	}
	cs := c.Client
	cidrs, err := waitPodCIDRs(ctx, cs, len(c.Nodes), kubeRouterReadyTimeout)
	if err != nil {
		return err
	}
	if err := applyKubeRouter(ctx, cs, k.image, cidrs); err != nil {
		return err
	}
	if err := cluster.WaitDaemonSet(ctx, cs, namespace, kubeRouterName, len(c.Nodes), kubeRouterReadyTimeout); err != nil {
		return err
	}
	return waitPodRoutes(ctx, cs, func(ctx context.Context, node string) (string, error) {
		out, err := c.Exec(ctx, node, KubeRouterRoutesCommand...)
		return string(out), err
	}, kubeRouterReadyTimeout)
}

// CNIConfList is the part of a CNI network configuration list the lab
// writes (the CNI spec's fields, as the bridge and host-local plugins read them).
type CNIConfList struct {
	CNIVersion string      `json:"cniVersion"`
	Name       string      `json:"name"`
	Plugins    []CNIPlugin `json:"plugins"`
}

// CNIPlugin is one plugin of a CNIConfList.
type CNIPlugin struct {
	Type             string   `json:"type"`
	Bridge           string   `json:"bridge,omitempty"`
	IsDefaultGateway bool     `json:"isDefaultGateway,omitempty"`
	HairpinMode      bool     `json:"hairpinMode,omitempty"`
	IPAM             *CNIIPAM `json:"ipam,omitempty"`
}

// CNIIPAM is a plugin's IP address management.
type CNIIPAM struct {
	Type   string            `json:"type"`
	Ranges [][]CNIIPAMSubnet `json:"ranges,omitempty"`
}

// CNIIPAMSubnet is one range of host-local's ranges.
type CNIIPAMSubnet struct {
	Subnet string `json:"subnet"`
}

// kubeRouterCNIConfList is the conflist a node gets: the bridge plugin on
// kube-bridge, the pods' default gateway, with hairpin mode (a pod reaching
// itself through a Service VIP that kube-proxy DNATs back to it), and
// host-local addresses from the node's pod CIDRs. kube-router inserts a
// node's pod CIDR itself when it starts (and the MTU of the node's
// interface), but a node is Ready as soon as a configuration is in
// /etc/cni/net.d, and pods scheduled before kube-router has run would fail
// ("no IP ranges specified") and wait out kubelet's back-off: so Install
// writes each node's conflist with its pod CIDRs already in; the one with
// none is for a node that joins later.
func kubeRouterCNIConfList(podCIDRs []string) ([]byte, error) {
	ipam := &CNIIPAM{Type: "host-local"}
	for _, c := range podCIDRs {
		ipam.Ranges = append(ipam.Ranges, []CNIIPAMSubnet{{Subnet: c}})
	}
	return json.MarshalIndent(CNIConfList{
		CNIVersion: "0.3.1",
		Name:       "kube-router",
		Plugins: []CNIPlugin{{
			Type:             "bridge",
			Bridge:           KubeRouterBridge,
			IsDefaultGateway: true,
			HairpinMode:      true,
			IPAM:             ipam,
		}},
	}, "", "  ")
}

// nodeConfKey is the ConfigMap key of a node's own conflist.
func nodeConfKey(node string) string { return kubeRouterCNIKey + "." + node }

// installCNIScript is the init container's script. It makes kube-bridge
// first: kube-router creates it too when it starts, and a bridge plugin
// creating it at the same moment for the node's first pod fails ("could not
// set bridge's mac"). Then it puts the node's conflist (the template when
// the node has none) in place unless one is already there (kube-router has
// since completed it: a restart must not take that away), written under a
// temporary name and renamed, so the runtime never reads half a file.
const installCNIScript = `set -eu
ip link show ` + KubeRouterBridge + ` >/dev/null 2>&1 || ip link add ` + KubeRouterBridge + ` type bridge
ip link set ` + KubeRouterBridge + ` up
conf=` + KubeRouterCNIConf + `
if [ -f "$conf" ]; then
  echo "$conf already there"
  exit 0
fi
src=/etc/kube-router/` + kubeRouterCNIKey + `
if [ -f "$src.$NODE_NAME" ]; then src="$src.$NODE_NAME"; fi
cp "$src" /etc/cni/net.d/.kuberouter.tmp
mv /etc/cni/net.d/.kuberouter.tmp "$conf"
echo "installed $conf from $src"
`

// modprobeShim stands in for modprobe, which kube-router runs for
// br_netfilter: its image has none, and the lab's hosts have no loadable
// modules at all (FACTS.md), so a real modprobe could not find the module
// either. It succeeds when what is asked for is already in the kernel.
const modprobeShim = `#!/bin/sh
# modprobe for kube-router on kernels without loadable modules: succeed when
# the module's function is already there (built in), fail and say so if not.
for m in "$@"; do
  case "$m" in -*) continue ;; esac
  case "$m" in
    br_netfilter) test -d /proc/sys/net/bridge && continue ;;
    *) test -d "/sys/module/$m" && continue ;;
  esac
  echo "modprobe: module $m is not in this kernel, and modules cannot be loaded" >&2
  exit 1
done
`

// kubeRouterObjects are what Install applies, in order.
type kubeRouterObjects struct {
	ServiceAccount *corev1.ServiceAccount
	ClusterRole    *rbacv1.ClusterRole
	Binding        *rbacv1.ClusterRoleBinding
	ConfigMap      *corev1.ConfigMap
	DaemonSet      *appsv1.DaemonSet
}

// newKubeRouterObjects makes kube-router's objects for its image and the
// nodes' pod CIDRs (by node name).
func newKubeRouterObjects(image string, podCIDRs map[string][]string) (kubeRouterObjects, error) {
	conf, err := kubeRouterCNIConfList(nil)
	if err != nil {
		return kubeRouterObjects{}, err
	}
	data := map[string]string{kubeRouterCNIKey: string(conf) + "\n", "modprobe": modprobeShim}
	for node, cidrs := range podCIDRs {
		b, err := kubeRouterCNIConfList(cidrs)
		if err != nil {
			return kubeRouterObjects{}, err
		}
		data[nodeConfKey(node)] = string(b) + "\n"
	}
	labels := map[string]string{"app": kubeRouterName}
	meta := metav1.ObjectMeta{Name: kubeRouterName, Namespace: namespace, Labels: labels}
	clusterMeta := metav1.ObjectMeta{Name: kubeRouterName, Labels: labels}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: clusterMeta,
		Rules: []rbacv1.PolicyRule{
			// nodes: pod CIDRs and addresses (BGP peers); the rest: what the
			// network policy controller watches.
			{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces", "pods", "services", "endpoints"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
			// leader election (only used by its service advertisement).
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
			{APIGroups: []string{""}, Resources: []string{"services/status"}, Verbs: []string{"update"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: clusterMeta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: kubeRouterName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kubeRouterName, Namespace: namespace}},
	}
	privileged := true
	nodeName := corev1.EnvVar{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}
	shimMode := int32(0o755)
	hostPath := func(name, path string, t corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &t}}}
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: meta,
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: kubeRouterName,
					HostNetwork:        true,
					DNSPolicy:          corev1.DNSDefault, // it resolves no names: in-cluster config is an IP
					PriorityClassName:  "system-node-critical",
					// Every node, whatever its taints (not-ready included:
					// it is what makes them ready).
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					InitContainers: []corev1.Container{{
						Name:            "install-cni",
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Command:         []string{"/bin/sh", "-c", installCNIScript},
						Env:             []corev1.EnvVar{nodeName},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "cni-conf-dir", MountPath: "/etc/cni/net.d"},
							{Name: "kube-router-cfg", MountPath: "/etc/kube-router", ReadOnly: true},
						},
					}},
					Containers: []corev1.Container{{
						Name:            kubeRouterName,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            KubeRouterArgs,
						Env: []corev1.EnvVar{
							nodeName,
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							{Name: "KUBE_ROUTER_CNI_CONF_FILE", Value: KubeRouterCNIConf},
						},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
						// /healthz answers once every controller it runs has
						// synced and keeps heartbeating.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: "/healthz", Port: intstr.FromInt32(kubeRouterHealthPort),
							}},
							PeriodSeconds: 3,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("50m"),
							corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
							{Name: "cni-conf-dir", MountPath: "/etc/cni/net.d"},
							// iptables's lock, shared with kube-proxy on the node.
							{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
							{Name: "kube-router-cfg", MountPath: "/usr/local/sbin/modprobe", SubPath: "modprobe", ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						hostPath("lib-modules", "/lib/modules", corev1.HostPathDirectory),
						hostPath("cni-conf-dir", "/etc/cni/net.d", corev1.HostPathDirectoryOrCreate),
						hostPath("xtables-lock", "/run/xtables.lock", corev1.HostPathFileOrCreate),
						{Name: "kube-router-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: kubeRouterName},
							DefaultMode:          &shimMode,
						}}},
					},
				},
			},
		},
	}
	return kubeRouterObjects{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: meta},
		ClusterRole:    role,
		Binding:        binding,
		ConfigMap:      &corev1.ConfigMap{ObjectMeta: meta, Data: data},
		DaemonSet:      ds,
	}, nil
}

// applyKubeRouter applies kube-router's objects.
func applyKubeRouter(ctx context.Context, cs kubernetes.Interface, image string, podCIDRs map[string][]string) error {
	o, err := newKubeRouterObjects(image, podCIDRs)
	if err != nil {
		return err
	}
	if _, err := apply(ctx, cs.CoreV1().ServiceAccounts(namespace), o.ServiceAccount); err != nil {
		return fmt.Errorf("kube-router: %w", err)
	}
	if _, err := apply(ctx, cs.RbacV1().ClusterRoles(), o.ClusterRole); err != nil {
		return fmt.Errorf("kube-router: %w", err)
	}
	if _, err := apply(ctx, cs.RbacV1().ClusterRoleBindings(), o.Binding); err != nil {
		return fmt.Errorf("kube-router: %w", err)
	}
	if _, err := apply(ctx, cs.CoreV1().ConfigMaps(namespace), o.ConfigMap); err != nil {
		return fmt.Errorf("kube-router: %w", err)
	}
	if _, err := apply(ctx, cs.AppsV1().DaemonSets(namespace), o.DaemonSet); err != nil {
		return fmt.Errorf("kube-router: %w", err)
	}
	return nil
}

// waitPodCIDRs waits until nodes nodes are registered, each with the pod
// CIDRs kube-controller-manager allocates, and returns them by node name.
func waitPodCIDRs(ctx context.Context, cs kubernetes.Interface, nodes int, timeout time.Duration) (map[string][]string, error) {
	var cidrs map[string][]string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		cidrs = map[string][]string{}
		for _, n := range list.Items {
			if c := podCIDRsOf(n); len(c) > 0 {
				cidrs[n.Name] = c
			}
		}
		return len(list.Items) == nodes && len(cidrs) == nodes, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kube-router: %d nodes with a pod CIDR (%v), want %d, after %s: %w", len(cidrs), cidrs, nodes, timeout, err)
	}
	return cidrs, nil
}

func podCIDRsOf(n corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// waitPodRoutes waits until every node has a route to each other node's pod
// CIDR through that node's address: what kube-router's BGP peering
// programs. routes returns a node's KubeRouterRoutesCommand output.
func waitPodRoutes(ctx context.Context, cs kubernetes.Interface, routes func(context.Context, string) (string, error), timeout time.Duration) error {
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		want, err := PodRoutes(list.Items)
		if err != nil {
			missing = []string{err.Error()}
			return false, nil
		}
		missing = nil
		for _, n := range list.Items {
			out, err := routes(ctx, n.Name)
			if err != nil {
				return false, err
			}
			missing = append(missing, MissingRoutes(n.Name, want[n.Name], out)...)
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("kube-router: pod routes not programmed after %s: %s: %w%s", timeout, strings.Join(missing, "; "), err,
			cluster.PodProblems(ctx, cs, namespace, &metav1.LabelSelector{MatchLabels: map[string]string{"app": kubeRouterName}}))
	}
	return nil
}

// Route is a route to another node's pod CIDR through that node.
type Route struct {
	CIDR, Via string
}

// PodRoutes returns, for each node, the routes it needs to reach the other
// nodes' pods: each other node's pod CIDRs through its internal IP. A node
// without a pod CIDR or an internal IP is an error.
func PodRoutes(nodes []corev1.Node) (map[string][]Route, error) {
	type info struct {
		ip    string
		cidrs []string
	}
	infos := map[string]info{}
	for _, n := range nodes {
		var i info
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
				i.ip = a.Address
				break
			}
		}
		i.cidrs = podCIDRsOf(n)
		if i.ip == "" || len(i.cidrs) == 0 {
			return nil, fmt.Errorf("node %s: internal IPv4 %q, pod CIDRs %v: both are needed", n.Name, i.ip, i.cidrs)
		}
		infos[n.Name] = i
	}
	out := map[string][]Route{}
	for name := range infos {
		var rs []Route
		for other, i := range infos {
			if other == name {
				continue
			}
			for _, c := range i.cidrs {
				if _, ipnet, err := net.ParseCIDR(c); err == nil && ipnet.IP.To4() != nil {
					rs = append(rs, Route{CIDR: ipnet.String(), Via: i.ip})
				}
			}
		}
		sort.Slice(rs, func(a, b int) bool { return rs[a].CIDR < rs[b].CIDR })
		out[name] = rs
	}
	return out, nil
}

// MissingRoutes returns the wanted routes that `ip -4 route show` output
// lacks, as "node: CIDR via IP".
func MissingRoutes(node string, want []Route, ipRoute string) []string {
	have := map[Route]bool{}
	for _, line := range strings.Split(ipRoute, "\n") {
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "via" {
				have[Route{CIDR: f[0], Via: f[i+1]}] = true
			}
		}
	}
	var missing []string
	for _, r := range want {
		if !have[r] {
			missing = append(missing, fmt.Sprintf("%s: no route %s via %s", node, r.CIDR, r.Via))
		}
	}
	return missing
}
