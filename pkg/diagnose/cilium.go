package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Cilium is what cilium-config says of service load-balancing.
type Cilium struct {
	// KubeProxyReplacement is the raw value: true/false (Cilium ≥ 1.14),
	// strict/partial/probe/disabled (older).
	KubeProxyReplacement string `json:"kubeProxyReplacement"`
	// Replaces: Cilium's eBPF translates Service VIPs, not netfilter's DNAT.
	Replaces bool `json:"replacesKubeProxy"`
	// SocketLB: the VIP is translated at connect()/sendmsg() in the pod's
	// socket, before any packet exists, so no packet of the pod carries the
	// VIP; false when it is off or limited to the host namespace.
	SocketLB bool   `json:"socketLB"`
	Note     string `json:"note"`
}

// CiliumConfig reads Cilium's ConfigMap (kube-system/cilium-config); nil
// when there is none.
func CiliumConfig(cm *corev1.ConfigMap) *Cilium {
	if cm == nil {
		return nil
	}
	d := cm.Data
	kpr := d["kube-proxy-replacement"]
	c := &Cilium{KubeProxyReplacement: kpr}
	switch strings.ToLower(kpr) {
	case "true", "strict":
		c.Replaces = true
	case "partial", "probe":
		// Older releases: partial/probe replace some service types; socket LB
		// decides the ClusterIP path.
		c.Replaces = isTrue(d["enable-host-reachable-services"]) || isTrue(d["bpf-lb-sock"])
	}
	// bpf-lb-sock (≥ 1.14) or enable-host-reachable-services (older) turn on
	// socket LB; with full replacement it is on unless set false.
	sock, set := d["bpf-lb-sock"]
	if !set {
		sock, set = d["enable-host-reachable-services"]
	}
	c.SocketLB = isTrue(sock) || (c.Replaces && !set)
	if isTrue(d["bpf-lb-sock-hostns-only"]) {
		c.SocketLB = false
	}
	switch {
	case c.Replaces && c.SocketLB:
		c.Note = "kube-proxy replaced, socket LB on: pods' DNS to the VIP is translated in the socket, no netfilter DNAT: the DNAT race is predicted not to apply"
	case c.Replaces:
		c.Note = "kube-proxy replaced by eBPF per packet (socket LB off for pods): no netfilter DNAT of the VIP; Cilium's own BPF conntrack is not covered by the kernel table"
	default:
		c.Note = fmt.Sprintf("kube-proxy-replacement %q: Cilium does not translate the DNS VIP; kube-proxy's netfilter DNAT does", kpr)
	}
	return c
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }
