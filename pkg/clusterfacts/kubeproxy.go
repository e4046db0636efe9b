package clusterfacts

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// KubeProxy is the service proxy's mode, and where it was read.
type KubeProxy struct {
	// Mode is iptables, ipvs, nftables, kernelspace…, or "" when no
	// kube-proxy was found (Source says why).
	Mode   string `json:"mode"`
	Source string `json:"source"`
}

// kubeProxyConfigs are the ConfigMaps in kube-system that hold a
// KubeProxyConfiguration, and their key: kubeadm (and so kind) writes
// kube-proxy/config.conf; EKS writes kube-proxy-config/config.
var kubeProxyConfigs = []struct{ name, key string }{
	{"kube-proxy", "config.conf"},
	{"kube-proxy-config", "config"},
}

// KubeProxyMode reads kube-proxy's mode: a --proxy-mode flag of its
// container (a DaemonSet's or a static pod's; GKE runs it as static pods
// with flags only) wins, then the KubeProxyConfiguration of its ConfigMap.
// An empty mode is iptables, kube-proxy's default on Linux. cms are
// kube-system's ConfigMaps by name; proxy is kube-proxy's pod template or
// static pod spec, nil when none was found.
func KubeProxyMode(cms map[string]*corev1.ConfigMap, proxy *corev1.PodSpec) KubeProxy {
	if proxy != nil {
		for _, c := range proxy.Containers {
			if m, ok := FlagValue(slices.Concat(c.Command, c.Args), "--proxy-mode"); ok {
				return KubeProxy{Mode: orIptables(m), Source: fmt.Sprintf("--proxy-mode of container %s", c.Name)}
			}
		}
	}
	for _, src := range kubeProxyConfigs {
		cm := cms[src.name]
		if cm == nil {
			continue
		}
		raw, ok := cm.Data[src.key]
		if !ok {
			continue
		}
		var cfg struct {
			Kind string `json:"kind"`
			Mode string `json:"mode"`
		}
		where := fmt.Sprintf("ConfigMap kube-system/%s key %s", src.name, src.key)
		if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
			return KubeProxy{Source: fmt.Sprintf("%s: not YAML: %v", where, err)}
		}
		if cfg.Kind != "KubeProxyConfiguration" {
			continue
		}
		src := where
		if cfg.Mode == "" {
			src += " (mode empty: iptables is the default)"
		}
		return KubeProxy{Mode: orIptables(cfg.Mode), Source: src}
	}
	if proxy != nil {
		return KubeProxy{Mode: "iptables", Source: "kube-proxy runs with neither --proxy-mode nor a known ConfigMap: iptables is the default"}
	}
	return KubeProxy{Source: "no kube-proxy DaemonSet, static pod or ConfigMap in kube-system (replaced by the CNI, e.g. Cilium, or not readable)"}
}

func orIptables(mode string) string {
	if mode == "" {
		return "iptables"
	}
	return mode
}

// FlagValue finds --name=value or --name value in argv. A shell command
// ("sh -c 'kube-proxy --proxy-mode=ipvs …'") is split on spaces first, so a
// flag inside the script is found too.
func FlagValue(argv []string, name string) (string, bool) {
	var words []string
	for _, a := range argv {
		words = append(words, strings.Fields(a)...)
	}
	for i, w := range words {
		w = strings.Trim(w, `"'`)
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			return strings.Trim(v, `"'`), true
		}
		if w == name && i+1 < len(words) {
			return strings.Trim(words[i+1], `"'`), true
		}
	}
	return "", false
}

// KubeProxySpec picks kube-proxy's pod spec: the DaemonSet's template, else
// the first static pod's spec.
func KubeProxySpec(ds *appsv1.DaemonSet, pods []corev1.Pod) *corev1.PodSpec {
	if ds != nil {
		return &ds.Spec.Template.Spec
	}
	if len(pods) > 0 {
		return &pods[0].Spec
	}
	return nil
}
