package diagnose

import (
	"fmt"
	"maps"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// CustomCorefileMap is the ConfigMap AKS mounts at /etc/coredns/custom and
// its Corefile imports: keys *.server add server blocks, keys *.override
// add plugins to the blocks that import them.
const CustomCorefileMap = "coredns-custom"

// WithCustom follows the Corefile's imports of custom/<key> into the
// ConfigMap (nil: no such ConfigMap, c unchanged): server blocks are added,
// override plugins merged into the block that imports them.
func WithCustom(c Corefile, cm *corev1.ConfigMap) Corefile {
	if cm == nil {
		return c
	}
	out := c
	out.Servers = slices.Clone(c.Servers)
	for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
		file := "custom/" + key
		from := fmt.Sprintf("ConfigMap kube-system/%s key %s", cm.Name, key)
		if imported(c.Imports, file) {
			extra := ParseCorefile(cm.Data[key])
			for _, s := range extra.Servers {
				s.From = from
				out.Servers = append(out.Servers, s)
			}
			for _, p := range extra.Problems {
				out.Problems = append(out.Problems, from+": "+p)
			}
		}
		for i := range out.Servers {
			if !imported(out.Servers[i].Imports, file) {
				continue
			}
			// An override is a list of plugins: read it as the body of a block.
			o := ParseCorefile("override {\n" + cm.Data[key] + "\n}\n")
			for _, p := range o.Problems {
				out.Problems = append(out.Problems, from+": "+p)
			}
			if len(o.Servers) == 1 {
				merge(&out.Servers[i], o.Servers[0])
			}
		}
	}
	return out
}

func imported(patterns []string, file string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, file); ok {
			return true
		}
	}
	return false
}

// merge adds what an override sets to a server block.
func merge(dst *CoreServer, o CoreServer) {
	if o.Autopath != "" {
		dst.Autopath = o.Autopath
	}
	if o.PodsMode != "" {
		dst.PodsMode = o.PodsMode
	}
	if o.Cache {
		dst.Cache, dst.CacheTTL = true, o.CacheTTL
	}
	dst.Forward = append(dst.Forward, o.Forward...)
	dst.Bind = append(dst.Bind, o.Bind...)
}
