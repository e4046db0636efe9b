package addons

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

// NodeLocal DNSCache as node-cache sets itself up (kube-proxy in iptables or
// nftables mode): docs/nodelocaldns.md.
const (
	// NodeLocalName names the cache's DaemonSet and ConfigMap in kube-system,
	// and its pods' k8s-app label, as in the upstream manifest.
	NodeLocalName = "node-local-dns"
	// NodeLocalIP is the link-local address the cache listens on besides the
	// cluster DNS VIP.
	NodeLocalIP = "169.254.20.10"
	// NodeLocalInterface is the node interface that carries both addresses.
	NodeLocalInterface = "nodelocaldns"
	// NodeLocalUpstream is the Service in front of the cluster DNS pods the
	// cache forwards cluster names to (the VIP itself is bound on the nodes).
	NodeLocalUpstream = "kube-dns-upstream"
	// NodeLocalHealthPort serves the health plugin on NodeLocalIP (node-cache
	// uses 8080; a port of its own here keeps clear of anything on the node).
	NodeLocalHealthPort = 9254
	// NodeLocalMetricsPort serves the prometheus plugin on every address.
	NodeLocalMetricsPort = 9253
	// NodeLocalCacheAnnotation, on the DaemonSet and ConfigMap, says which
	// cache runs: NodeLocalCacheNodeCache or NodeLocalCacheCoreDNS.
	NodeLocalCacheAnnotation = "labrun.dev/nodelocaldns-cache"
	NodeLocalCacheNodeCache  = "node-cache"
	NodeLocalCacheCoreDNS    = "coredns-stand-in"
	// node-cache's comments on its iptables rules.
	nodeLocalSkipComment  = "NodeLocal DNS Cache: skip conntrack"
	nodeLocalAllowComment = "NodeLocal DNS Cache: allow DNS traffic"
	nodeLocalAxis         = "mitigation=nodelocaldns"
)

// NodeLocalConfig is what the cache's objects are made of.
type NodeLocalConfig struct {
	VIP           string // the cluster DNS Service's ClusterIP (kube-dns), bound on every node
	ClusterDomain string // e.g. cluster.local
	Upstream      string // NodeLocalUpstream's ClusterIP: where cluster names go (over TCP)
	Outside       string // the lab upstream's ClusterIP: where every other name goes
	CacheImage    string // kubeadm's CoreDNS image, or the published node-cache image
	NodeCache     bool   // CacheImage is node-cache (published), not CoreDNS
	SetupImage    string // the labagent image: iproute2, iptables and a shell
}

// NodeLocalCorefile is node-cache's Corefile with its placeholders filled:
// cluster names and reverse zones to the cluster DNS over TCP, the rest to
// the lab upstream (never the node's resolv.conf), all cached, answered on
// the link-local address and the VIP only.
func NodeLocalCorefile(c NodeLocalConfig) string {
	bind := fmt.Sprintf("bind %s %s", NodeLocalIP, c.VIP)
	prom := fmt.Sprintf("prometheus :%d", NodeLocalMetricsPort)
	var b strings.Builder
	fmt.Fprintf(&b, `%s:53 {
    errors
    cache {
        success 9984 30
        denial 9984 5
    }
    reload
    loop
    %s
    forward . %s {
        force_tcp
    }
    %s
    health %s:%d
}
`, c.ClusterDomain, bind, c.Upstream, prom, NodeLocalIP, NodeLocalHealthPort)
	for _, zone := range []string{"in-addr.arpa", "ip6.arpa"} {
		fmt.Fprintf(&b, `%s:53 {
    errors
    cache 30
    reload
    loop
    %s
    forward . %s {
        force_tcp
    }
    %s
}
`, zone, bind, c.Upstream, prom)
	}
	fmt.Fprintf(&b, `.:53 {
    errors
    cache 30
    reload
    loop
    %s
    forward . %s
    %s
}
`, bind, c.Outside, prom)
	return b.String()
}

// NodeLocalRule is one iptables rule of node-cache (cache_app.go,
// initIptables) for one of its addresses: Args as a shell would read them.
type NodeLocalRule struct{ Table, Chain, Args string }

// NodeLocalRules are node-cache's iptables rules for ip: untracked DNS to and
// from the cache in raw (so the pod's query gets no conntrack entry and no
// DNAT), accepted in filter, and the kubelet's health checks untracked too.
func NodeLocalRules(ip string) []NodeLocalRule {
	skip := fmt.Sprintf(`-m comment --comment "%s"`, nodeLocalSkipComment)
	allow := fmt.Sprintf(`-m comment --comment "%s"`, nodeLocalAllowComment)
	var out []NodeLocalRule
	for _, p := range []string{"tcp", "udp"} {
		out = append(out,
			NodeLocalRule{"raw", "PREROUTING", fmt.Sprintf("-p %s -d %s --dport 53 %s -j NOTRACK", p, ip, skip)},
			NodeLocalRule{"filter", "INPUT", fmt.Sprintf("-p %s -d %s --dport 53 %s -j ACCEPT", p, ip, allow)},
			NodeLocalRule{"raw", "OUTPUT", fmt.Sprintf("-p %s -s %s --sport 53 %s -j NOTRACK", p, ip, skip)},
			NodeLocalRule{"filter", "OUTPUT", fmt.Sprintf("-p %s -s %s --sport 53 %s -j ACCEPT", p, ip, allow)},
			NodeLocalRule{"raw", "OUTPUT", fmt.Sprintf("-p %s -d %s --dport 53 %s -j NOTRACK", p, ip, skip)},
		)
	}
	out = append(out,
		NodeLocalRule{"raw", "OUTPUT", fmt.Sprintf("-p tcp -d %s --dport %d %s -j NOTRACK", ip, NodeLocalHealthPort, skip)},
		NodeLocalRule{"raw", "OUTPUT", fmt.Sprintf("-p tcp -s %s --sport %d %s -j NOTRACK", ip, NodeLocalHealthPort, skip)},
	)
	return out
}

// NodeLocalSetupScript is the init container's /bin/sh script: the interface
// with both addresses, then the rules, each added only when missing (so a
// restarted pod changes nothing). The iptables flavour is chosen as the
// Kubernetes iptables-wrapper does: the one whose ruleset already holds
// rules; a tie goes to what `iptables` is. node-cache makes a dummy
// interface; a kernel without the dummy driver gets a bridge with no ports,
// which holds local addresses the same way (nothing is ever enslaved to it).
func NodeLocalSetupScript(vip string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `set -eu
IF=%s
n() { ("$1" -t raw; "$1" -t filter; "$1" -t nat; "$1" -t mangle) 2>/dev/null | grep -c '^-A' || true; }
NFT=$(n iptables-nft-save); LEGACY=$(n iptables-legacy-save)
if [ "$NFT" -gt "$LEGACY" ]; then IPT=iptables-nft
elif [ "$LEGACY" -gt "$NFT" ]; then IPT=iptables-legacy
else IPT=iptables; fi
echo "iptables: $IPT ($NFT rules in nft, $LEGACY in legacy; $(iptables --version))"
if ! ip link show "$IF" >/dev/null 2>&1; then
  if ip link add "$IF" type dummy 2>/dev/null; then echo "interface $IF: dummy (as node-cache)"
  else ip link add "$IF" type bridge; echo "interface $IF: bridge with no ports (this kernel has no dummy driver)"; fi
fi
ip link set "$IF" up
`, NodeLocalInterface)
	for _, ip := range []string{NodeLocalIP, vip} {
		fmt.Fprintf(&b, "ip addr replace %s/32 dev \"$IF\"\n", ip)
	}
	b.WriteString("rule() { t=$1; c=$2; shift 2; \"$IPT\" -w 5 -t \"$t\" -C \"$c\" \"$@\" 2>/dev/null || \"$IPT\" -w 5 -t \"$t\" -I \"$c\" 1 \"$@\"; }\n")
	for _, ip := range []string{NodeLocalIP, vip} {
		for _, r := range NodeLocalRules(ip) {
			fmt.Fprintf(&b, "rule %s %s %s\n", r.Table, r.Chain, r.Args)
		}
	}
	b.WriteString(`ip -d addr show dev "$IF"
"$IPT-save" -t raw | grep -c 'NodeLocal DNS Cache' | sed 's/^/raw rules: /'
`)
	return b.String()
}

// NodeLocalObjects are the cache's ConfigMap, upstream Service and
// DaemonSet. The Service is only a template: its ClusterIP is assigned on
// creation and then written into the Corefile (cfg.Upstream).
func NodeLocalObjects(cfg NodeLocalConfig) (*corev1.ConfigMap, *corev1.Service, *appsv1.DaemonSet) {
	which := NodeLocalCacheCoreDNS
	if cfg.NodeCache {
		which = NodeLocalCacheNodeCache
	}
	note := map[string]string{NodeLocalCacheAnnotation: which}
	labels := map[string]string{"k8s-app": NodeLocalName}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: NodeLocalName, Namespace: namespace, Labels: labels, Annotations: note},
		Data:       map[string]string{"Corefile": NodeLocalCorefile(cfg)},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: NodeLocalUpstream, Namespace: namespace,
			Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"k8s-app": "kube-dns"},
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	privileged := true
	grace := int64(0)
	health := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host: NodeLocalIP, Path: "/health", Port: intstr.FromInt32(NodeLocalHealthPort),
		}},
		PeriodSeconds: 2, TimeoutSeconds: 2,
	}
	liveness := health.DeepCopy()
	liveness.InitialDelaySeconds, liveness.PeriodSeconds, liveness.TimeoutSeconds = 60, 10, 5
	cache := corev1.Container{
		Name:            "cache",
		Image:           cfg.CacheImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            []string{"-conf", "/etc/coredns/Corefile"},
		Ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: NodeLocalMetricsPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: health,
		LivenessProbe:  liveness,
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
			Add: []corev1.Capability{"NET_BIND_SERVICE"},
		}},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("25m"),
			corev1.ResourceMemory: resource.MustParse("5Mi"),
		}},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns"}},
	}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: NodeLocalName},
			Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
		}}},
		{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: "/run/xtables.lock", Type: ptr.To(corev1.HostPathFileOrCreate),
		}}},
	}
	if cfg.NodeCache {
		// node-cache writes /etc/Corefile from Corefile.base (the Corefile
		// above has no placeholders left); the init container has made the
		// interface and rules, which node-cache would make a dummy for.
		cache.Args = []string{
			"-localip", NodeLocalIP + "," + cfg.VIP,
			"-conf", "/etc/Corefile",
			"-basecorefile", "/etc/coredns/Corefile.base",
			"-upstreamsvc", NodeLocalUpstream,
			"-health-port", fmt.Sprint(NodeLocalHealthPort),
			"-setupinterface=false", "-setupiptables=false", "-skipteardown=true",
		}
		volumes[0].ConfigMap.Items[0].Path = "Corefile.base"
		cache.SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
		cache.VolumeMounts = append(cache.VolumeMounts, corev1.VolumeMount{Name: "xtables-lock", MountPath: "/run/xtables.lock"})
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: NodeLocalName, Namespace: namespace, Labels: labels, Annotations: note},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromString("10%"))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: note},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSDefault,
					PriorityClassName:             "system-node-critical",
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  ptr.To(false),
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					InitContainers: []corev1.Container{{
						Name:            "setup",
						Image:           cfg.SetupImage,
						ImagePullPolicy: corev1.PullNever,
						Command:         []string{"/bin/sh", "-c", NodeLocalSetupScript(cfg.VIP)},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
						VolumeMounts:    []corev1.VolumeMount{{Name: "xtables-lock", MountPath: "/run/xtables.lock"}},
					}},
					Containers: []corev1.Container{cache},
					Volumes:    volumes,
				},
			},
		},
	}
	return cm, svc, ds
}

var kubernetesZone = regexp.MustCompile(`(?m)^\s*kubernetes\s+([^\s{]+)`)

// clusterDomain is the first zone of the kubernetes plugin in kubeadm's
// Corefile (cluster.local unless configured otherwise).
func clusterDomain(corefile string) string {
	if m := kubernetesZone.FindStringSubmatch(corefile); m != nil {
		return strings.TrimSuffix(m[1], ".")
	}
	return "cluster.local"
}

// NodeLocalDNS sets up NodeLocal DNSCache the way node-cache sets itself up
// with kube-proxy in iptables or nftables mode: on every node an interface
// holding 169.254.20.10 and the cluster DNS VIP, raw-table NOTRACK and
// filter ACCEPT rules for both, and a host-network cache answering on both.
// Pods keep their resolv.conf (nameserver = the VIP) and are answered on
// their own node with no DNAT and no conntrack entry. The cache is the
// published node-cache image when it is in the lab's image store, else a
// per-node CoreDNS (kubeadm's image) with node-cache's Corefile, which is
// what runs on this machine; the progress line, an annotation and the run's
// env.json (Env.Note: nodelocaldns.cache, nodelocaldns.interface) say which.
func NodeLocalDNS(ctx context.Context, env Env) error {
	cs := env.Cluster.Client
	dnsSvc, err := cs.CoreV1().Services(namespace).Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("nodelocaldns: cluster DNS service: %w", err)
	}
	outside, err := cs.CoreV1().Services(namespace).Get(ctx, UpstreamName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("nodelocaldns: lab upstream service %s: %w", UpstreamName, err)
	}
	coredns, err := cs.AppsV1().Deployments(namespace).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("nodelocaldns: kubeadm's coredns deployment (its image is the stand-in cache): %w", err)
	}
	corefile, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("nodelocaldns: coredns configmap: %w", err)
	}
	setup := env.Images.LabImage("labagent")
	if setup == nil {
		return fmt.Errorf("nodelocaldns: the labagent image (its iproute2 and iptables set the nodes up) is not in the image plan")
	}
	cfg := NodeLocalConfig{
		VIP:           dnsSvc.Spec.ClusterIP,
		ClusterDomain: clusterDomain(corefile.Data["Corefile"]),
		Outside:       outside.Spec.ClusterIP,
		CacheImage:    coredns.Spec.Template.Spec.Containers[0].Image,
	}
	if cfg.SetupImage, err = images.ImageRef(setup); err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	if recs, err := images.StoredFor("", nodeLocalAxis); err == nil && len(recs) == 1 {
		if err := env.Cluster.LoadImage(ctx, recs[0].Tarball); err != nil {
			return fmt.Errorf("nodelocaldns: load node-cache %s: %w", recs[0].Ref, err)
		}
		cfg.CacheImage, cfg.NodeCache = recs[0].Ref, true
	}
	// The upstream Service first: its ClusterIP goes into the Corefile.
	_, svc, _ := NodeLocalObjects(cfg)
	up, err := apply(ctx, cs.CoreV1().Services(namespace), svc)
	if err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	cfg.Upstream = up.Spec.ClusterIP
	cm, _, ds := NodeLocalObjects(cfg)
	if _, err := apply(ctx, cs.CoreV1().ConfigMaps(namespace), cm); err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	if _, err := apply(ctx, cs.AppsV1().DaemonSets(namespace), ds); err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	if err := cluster.WaitDaemonSet(ctx, cs, namespace, NodeLocalName, len(env.Cluster.Nodes), timeout); err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	kinds, err := NodeLocalCheckNodes(ctx, env.Cluster, cfg.VIP)
	if err != nil {
		return fmt.Errorf("nodelocaldns: %w", err)
	}
	what := "node-cache " + cfg.CacheImage
	if !cfg.NodeCache {
		what = fmt.Sprintf("per-node CoreDNS %s (stand-in for node-cache: image not in the store)", cfg.CacheImage)
	}
	env.Note("nodelocaldns.cache", what)
	env.Note("nodelocaldns.interface", NodeLocalInterface+": "+kinds)
	nodeLocalProgress(env.Progress, "nodelocaldns: %s on %s and %s on %d nodes; interface %s: %s; "+
		"cluster names → %s %s (TCP), other names → %s %s\n",
		what, NodeLocalIP, cfg.VIP, len(env.Cluster.Nodes), NodeLocalInterface, kinds,
		NodeLocalUpstream, cfg.Upstream, UpstreamName, cfg.Outside)
	return nil
}

// NodeLocalCheckNodes checks on every node that the interface holds both
// addresses and that the raw table holds the NOTRACK rules for both (in
// whichever iptables flavour), and returns the interface kinds found (e.g.
// "bridge on 3 nodes").
func NodeLocalCheckNodes(ctx context.Context, c *cluster.Cluster, vip string) (string, error) {
	var mu sync.Mutex
	kinds := map[string]int{}
	var errs []string
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func(node string) {
			defer wg.Done()
			kind, err := nodeLocalCheckNode(ctx, c, node, vip)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			kinds[kind]++
		}(n.Name)
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	var out []string
	for k, n := range kinds {
		out = append(out, fmt.Sprintf("%s on %d nodes", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", "), nil
}

func nodeLocalCheckNode(ctx context.Context, c *cluster.Cluster, node, vip string) (string, error) {
	link, err := c.Exec(ctx, node, "ip", "-d", "-o", "link", "show", "dev", NodeLocalInterface)
	if err != nil {
		return "", fmt.Errorf("node %s: interface %s: %v", node, NodeLocalInterface, err)
	}
	addrs, err := c.Exec(ctx, node, "ip", "-o", "-4", "addr", "show", "dev", NodeLocalInterface)
	if err != nil {
		return "", fmt.Errorf("node %s: addresses of %s: %v", node, NodeLocalInterface, err)
	}
	for _, ip := range []string{NodeLocalIP, vip} {
		if !strings.Contains(string(addrs), " "+ip+"/32") {
			return "", fmt.Errorf("node %s: %s lacks %s: %s", node, NodeLocalInterface, ip, strings.TrimSpace(string(addrs)))
		}
	}
	raw, err := c.Exec(ctx, node, "sh", "-c", "iptables-nft-save -t raw 2>/dev/null; iptables-legacy-save -t raw 2>/dev/null; true")
	if err != nil {
		return "", fmt.Errorf("node %s: raw table: %v", node, err)
	}
	if missing := NodeLocalMissingRules(string(raw), vip); len(missing) > 0 {
		return "", fmt.Errorf("node %s: raw table lacks %s", node, strings.Join(missing, ", "))
	}
	return nodeLocalLinkKind(string(link)), nil
}

// NodeLocalMissingRules lists which raw-table NOTRACK rules for the two
// addresses (PREROUTING udp/tcp to port 53; OUTPUT udp/tcp from port 53)
// iptables-save output lacks.
func NodeLocalMissingRules(save, vip string) []string {
	var missing []string
	for _, ip := range []string{NodeLocalIP, vip} {
		for _, p := range []string{"udp", "tcp"} {
			for _, want := range []struct{ chain, dir string }{{"PREROUTING", "-d " + ip + "/32"}, {"OUTPUT", "-s " + ip + "/32"}} {
				found := false
				for _, l := range strings.Split(save, "\n") {
					if strings.HasPrefix(l, "-A "+want.chain+" ") && strings.Contains(l, want.dir+" ") &&
						strings.Contains(l, "-p "+p+" ") && strings.Contains(l, "-j NOTRACK") {
						found = true
						break
					}
				}
				if !found {
					missing = append(missing, fmt.Sprintf("%s %s %s NOTRACK", want.chain, p, want.dir))
				}
			}
		}
	}
	return missing
}

// nodeLocalLinkKind reads the link type from `ip -d -o link show` output.
func nodeLocalLinkKind(link string) string {
	for _, kind := range []string{"dummy", "bridge"} {
		if strings.Contains(link, " "+kind+" ") {
			if kind == "bridge" {
				return "bridge with no ports (no dummy driver in this kernel)"
			}
			return kind
		}
	}
	return "unknown type"
}

func nodeLocalProgress(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format, a...)
	}
}
