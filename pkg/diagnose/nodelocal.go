package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// nodeLocalNames are the DaemonSet names NodeLocal DNSCache goes by: the
// upstream manifest's and kubespray's / some managed offerings'.
var nodeLocalNames = []string{"node-local-dns", "nodelocaldns"}

// clusterDNSPlaceholder is the upstream manifest's stand-in for the cluster
// DNS address in node-cache's Corefile.
const clusterDNSPlaceholder = "__PILLAR__CLUSTER__DNS__"

// NodeLocal is NodeLocal DNSCache as its DaemonSet and Corefile show it.
type NodeLocal struct {
	DaemonSet string `json:"daemonSet"` // namespace/name
	Image     string `json:"image"`
	// LocalIPs are the addresses it listens on: node-cache's -localip, else
	// its Corefile's bind.
	LocalIPs []string `json:"localIPs"`
	// ListenIP is the link-local one among them (169.254.20.10 upstream):
	// what pods point at when the kubelet's clusterDNS is the cache.
	ListenIP string `json:"listenIP"`
	// InterceptsVIP: it also binds the cluster DNS VIP, so with kube-proxy
	// in iptables or nftables mode pods that still use the VIP reach the
	// cache, untracked (NOTRACK), and never go through the DNAT.
	InterceptsVIP bool `json:"interceptsVIP"`
	// ForceTCP lists forward targets it reaches over TCP only.
	ForceTCP []string  `json:"forceTCP,omitempty"`
	Corefile *Corefile `json:"corefile,omitempty"`
	Ready    string    `json:"ready"` // "ready/desired" pods
	Source   string    `json:"source"`
}

// FindNodeLocal finds NodeLocal DNSCache among daemonSets; cms are the
// ConfigMaps of its namespace by name, vip the cluster DNS VIP. nil when
// there is none.
func FindNodeLocal(daemonSets []appsv1.DaemonSet, cms map[string]*corev1.ConfigMap, vip string) *NodeLocal {
	i := slices.IndexFunc(daemonSets, func(ds appsv1.DaemonSet) bool { return slices.Contains(nodeLocalNames, ds.Name) })
	if i < 0 {
		return nil
	}
	ds := daemonSets[i]
	n := &NodeLocal{
		DaemonSet: ds.Namespace + "/" + ds.Name,
		Ready:     fmt.Sprintf("%d/%d", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled),
	}
	spec := ds.Spec.Template.Spec
	var sources []string
	upstreamSvc := ""
	for _, c := range spec.Containers {
		argv := slices.Concat(c.Command, c.Args)
		if v, ok := flagValue(argv, "-localip"); ok {
			n.Image = c.Image
			n.LocalIPs = splitIPs(v)
			sources = append(sources, fmt.Sprintf("-localip of container %s", c.Name))
			upstreamSvc, _ = flagValue(argv, "-upstreamsvc")
			break
		}
	}
	if n.Image == "" && len(spec.Containers) > 0 {
		n.Image = spec.Containers[0].Image
	}
	if cm, key := nodeLocalCorefileMap(spec, cms); cm != nil {
		c := ParseCorefile(cm.Data[key])
		n.Corefile = &c
		n.ForceTCP = c.ForceTCP()
		for i, t := range n.ForceTCP {
			// node-cache fills the placeholder at start with the ClusterIP of
			// its -upstreamsvc Service: name that, not the placeholder.
			if t == clusterDNSPlaceholder && upstreamSvc != "" {
				n.ForceTCP[i] = "service " + upstreamSvc + " (" + clusterDNSPlaceholder + ")"
			}
		}
		sources = append(sources, fmt.Sprintf("Corefile of ConfigMap %s/%s key %s", cm.Namespace, cm.Name, key))
		if len(n.LocalIPs) == 0 {
			for _, s := range c.Servers {
				for _, ip := range s.Bind {
					if !slices.Contains(n.LocalIPs, ip) {
						n.LocalIPs = append(n.LocalIPs, ip)
					}
				}
			}
		}
	}
	for _, ip := range n.LocalIPs {
		if a, err := netip.ParseAddr(ip); err == nil && a.IsLinkLocalUnicast() && n.ListenIP == "" {
			n.ListenIP = ip
		}
		if vip != "" && ip == vip {
			n.InterceptsVIP = true
		}
	}
	if n.ListenIP == "" && len(n.LocalIPs) > 0 {
		n.ListenIP = n.LocalIPs[0]
	}
	n.Source = strings.Join(sources, "; ")
	if n.Source == "" {
		n.Source = "DaemonSet " + n.DaemonSet + " (neither -localip nor a readable Corefile)"
	}
	return n
}

func splitIPs(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// nodeLocalCorefileMap is the ConfigMap (and key) that the DaemonSet mounts
// its Corefile from: node-cache mounts key Corefile as Corefile.base and
// writes /etc/Corefile itself; a CoreDNS stand-in mounts it as Corefile.
func nodeLocalCorefileMap(spec corev1.PodSpec, cms map[string]*corev1.ConfigMap) (*corev1.ConfigMap, string) {
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := cms[v.ConfigMap.Name]
		if cm == nil {
			continue
		}
		for _, it := range v.ConfigMap.Items {
			if strings.HasPrefix(it.Path, "Corefile") {
				if _, ok := cm.Data[it.Key]; ok {
					return cm, it.Key
				}
			}
		}
		if _, ok := cm.Data["Corefile"]; ok {
			return cm, "Corefile"
		}
	}
	return nil, ""
}
