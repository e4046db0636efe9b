package clusterfacts

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
)

// CNI is a pod network found by its DaemonSet.
type CNI struct {
	Name      string `json:"name"`      // calico, weave, cilium…
	DaemonSet string `json:"daemonSet"` // namespace/name
	Note      string `json:"note,omitempty"`
}

// cniDaemonSets maps the DaemonSet names pod networks use in the wild to the
// network's name. Their namespaces vary (calico-system under the Tigera
// operator, kube-flannel for flannel), so only the name is matched.
var cniDaemonSets = map[string]string{
	"calico-node":     "calico",
	"canal":           "canal",
	"weave-net":       "weave",
	"cilium":          "cilium",
	"anetd":           "cilium", // GKE Dataplane V2
	"kindnet":         "kindnet",
	"kube-router":     "kube-router",
	"kube-flannel-ds": "flannel",
	"kube-flannel":    "flannel",
	"flannel":         "flannel",
	"aws-node":        "aws-vpc-cni",
	"azure-cns":       "azure-cni",
	"antrea-agent":    "antrea",
	"ovnkube-node":    "ovn-kubernetes",
	"labnet":          "labnet", // the lab's own default network
}

// FindCNIs names the pod networks among daemonSets, in name order. Weave's
// fastdp is noted: the seeds saw the race with it and not without
// (WEAVE_NO_FASTDP set).
func FindCNIs(daemonSets []appsv1.DaemonSet) []CNI {
	var out []CNI
	for _, ds := range daemonSets {
		name, ok := cniDaemonSets[ds.Name]
		if !ok {
			continue
		}
		c := CNI{Name: name, DaemonSet: ds.Namespace + "/" + ds.Name}
		if name == "weave" {
			c.Note = "fastdp (the seeds saw the race with it)"
			if envSet(ds, "WEAVE_NO_FASTDP") {
				c.Note = "WEAVE_NO_FASTDP set: sleeve mode (the seeds saw the race go away)"
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b CNI) int { return strings.Compare(a.Name+a.DaemonSet, b.Name+b.DaemonSet) })
	return out
}

// envSet reports whether any container of the DaemonSet sets name to a
// non-empty value.
func envSet(ds appsv1.DaemonSet, name string) bool {
	for _, c := range ds.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == name && e.Value != "" {
				return true
			}
		}
	}
	return false
}
