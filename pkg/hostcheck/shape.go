package hostcheck

import (
	"fmt"
	"strings"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// HaveImage says whether the lab holds an image (pulled or imported) by its
// repo:tag; InCache is the real one.
type HaveImage func(ref string) bool

// InCache finds images in the artifact cache (images pull / images import).
func InCache(cache string) HaveImage {
	return func(ref string) bool {
		_, ok := images.FindStored(cache, ref)
		return ok
	}
}

// whyNotBuilt says, per axis value that only published images provide, why
// this machine cannot build them (FACTS.md, "The Go module proxy here is an
// allow-list").
var whyNotBuilt = map[string]string{
	"podNetwork=calico":   "Calico cannot be built here (github.com/projectcalico/api is refused by the Go module proxy)",
	"podNetwork=weave":    "Weave Net cannot be built here (github.com/weaveworks/weave is refused by the Go module proxy)",
	"dns=kube-dns":        "kube-dns cannot be built here (k8s.io/dns is refused by the Go module proxy)",
	"nodeImage=published": "the lab takes kind's node image as kind publishes it (nodeImage: built is the one made here),",
}

// NotRun says why a cluster of shape c cannot run on this host with the
// images the lab holds, or "" when nothing on the host or in the image store
// stands in its way. It covers what the host decides: the kernel (kube-proxy
// ipvs needs IPVS; Calico's VXLAN mode needs VXLAN) and the published images
// (Calico, Weave Net, kube-dns). Whether the lab sets an axis value up at all
// is scenario.Unsupported's to say.
func NotRun(k Kernel, c scenario.Cluster, have HaveImage) string {
	published, err := images.LoadPublished()
	if err != nil {
		return err.Error()
	}
	var reasons []string
	if c.KubeProxy == "ipvs" && !k.Has(IPVS) {
		reasons = append(reasons, "kubeProxy ipvs: "+k.Finding(IPVS).Reason())
	}
	// Calico runs in VXLAN mode: this lab's kernels have no IPIP (FACTS.md),
	// and VXLAN needs nothing from the node beyond the kernel.
	if c.PodNetwork == "calico" && !k.Has(VXLAN) {
		reasons = append(reasons, "podNetwork calico (VXLAN mode): "+k.Finding(VXLAN).Reason())
	}
	for _, axis := range []string{"podNetwork=" + c.PodNetwork, "dns=" + c.DNS.Server, "nodeImage=" + c.NodeImage} {
		if r := missingImages(axis, published, have); r != "" {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) > 0 && c.PodNetwork == "weave" {
		// What a user with the images would get here.
		reasons = append(reasons, "with them Weave Net would run in "+WeaveMode(k)+", not fastdp as in the seeds")
	}
	return strings.Join(reasons, "; ")
}

// missingImages names the published images axis needs that the lab lacks.
func missingImages(axis string, published []images.Published, have HaveImage) string {
	var missing, names []string
	for _, p := range published {
		if p.Needed(axis) && !have(p.Ref) {
			missing = append(missing, p.Pinned())
			names = append(names, p.Name)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	noun := "image"
	if len(missing) > 1 {
		noun = "images"
	}
	why := whyNotBuilt[axis]
	if why == "" {
		why = "it is not built by the lab"
	}
	return fmt.Sprintf("%s: %s %s missing: %s and no registry is reachable from the lab's machines; "+
		"where one is: labrun images pull %s [--mirror HOST[:PORT]], or labrun images import FILE.tar",
		strings.Replace(axis, "=", " ", 1), noun, strings.Join(missing, ", "), why, strings.Join(names, " "))
}

// WeaveMode is the data path Weave Net would use here: fastdp needs the
// openvswitch datapath; without it Weave falls back to sleeve (user space),
// and the report must say which ran.
func WeaveMode(k Kernel) string {
	if k.Has(OpenvSwitch) {
		return "fastdp"
	}
	return "sleeve (" + k.Finding(OpenvSwitch).Reason() + ")"
}
