package diagnose

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Facts are what diagnose reads from the API before it makes anything.
type Facts struct {
	Kubernetes string      `json:"kubernetes"` // the API server's version
	Nodes      []Node      `json:"nodes"`
	KubeProxy  KubeProxy   `json:"kubeProxy"`
	DNS        DNSService  `json:"dns"`
	CoreDNS    *Corefile   `json:"coredns,omitempty"`
	NodeLocal  *NodeLocal  `json:"nodeLocal,omitempty"`
	CNIs       []CNI       `json:"cnis"`
	Cilium     *Cilium     `json:"cilium,omitempty"`
	Kubelet    *KubeletDNS `json:"kubelet,omitempty"`
	// NotRead are the facts that could not be read, each with why and what
	// the prediction lacks for it.
	NotRead []string `json:"notRead,omitempty"`
}

// Node is one node's facts.
type Node struct {
	Name    string      `json:"name"`
	Ready   bool        `json:"ready"`
	OSImage string      `json:"osImage"`
	Kernel  KernelFixes `json:"kernel"`
	// ControlPlane nodes are probed only when there is no other node.
	ControlPlane bool `json:"controlPlane,omitempty"`
	// Images are the image names the node holds (NodeStatus.Images): a lab
	// cluster's preloaded probe images are found there.
	Images []string `json:"-"`
}

// NodeFacts reads a node's kernel (NodeInfo.KernelVersion) and readiness.
func NodeFacts(n corev1.Node) Node {
	out := Node{Name: n.Name, OSImage: n.Status.NodeInfo.OSImage, Kernel: PredictKernel(n.Status.NodeInfo.KernelVersion)}
	_, out.ControlPlane = n.Labels["node-role.kubernetes.io/control-plane"]
	for _, img := range n.Status.Images {
		out.Images = append(out.Images, img.Names...)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// KubeletDNS is the kubelet's clusterDNS as kubeadm records it (ConfigMap
// kube-system/kubelet-config, key kubelet): which address pods get as their
// nameserver. With NodeLocal DNSCache not binding the VIP (kube-proxy ipvs),
// only this decides whether pods use the cache.
type KubeletDNS struct {
	ClusterDNS    []string `json:"clusterDNS"`
	ClusterDomain string   `json:"clusterDomain"`
	Source        string   `json:"source"`
}

// KubeletClusterDNS reads kubeadm's kubelet-config ConfigMap; nil when
// there is none (managed clusters keep the kubelet's configuration on the
// nodes).
func KubeletClusterDNS(cm *corev1.ConfigMap) (*KubeletDNS, error) {
	if cm == nil {
		return nil, nil
	}
	raw, ok := cm.Data["kubelet"]
	if !ok {
		return nil, nil
	}
	var cfg struct {
		ClusterDNS    []string `json:"clusterDNS"`
		ClusterDomain string   `json:"clusterDomain"`
	}
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/%s key kubelet: %w", cm.Name, err)
	}
	return &KubeletDNS{ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		Source: "ConfigMap kube-system/" + cm.Name + " key kubelet"}, nil
}
