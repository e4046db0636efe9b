package addons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
)

// Autopath turns on CoreDNS's autopath (the mitigation autopath): CoreDNS
// walks a pod's search path itself and answers the first query of a lookup
// with a CNAME to the name that exists, so a pod's lookup of an outside name
// under ndots:5 costs one query per type instead of one per search domain.
// It needs `pods verified` (CoreDNS watches the pods to find the client's
// namespace by its source address). When it returns, every CoreDNS replica
// runs the new Corefile.
//
// Behind a cache that hides the client's address (dns.server
// dnsmasq-coredns), CoreDNS sees the cache's pod as the client, so autopath
// is set up but cuts nothing for the probes: that is a property of the shape,
// not a failure here.
func Autopath(ctx context.Context, env Env) error {
	if err := rewriteCoreDNS(ctx, env.Cluster.Client, AutopathCorefile); err != nil {
		return fmt.Errorf("autopath: %w", err)
	}
	return nil
}

// kubernetesLine is the kubernetes plugin's line of a server block: its
// indentation, and whether it opens a block.
var kubernetesLine = regexp.MustCompile(`^(\s*)kubernetes(?:\s[^{]*)?(\{)?\s*$`)

var autopathLine = regexp.MustCompile(`(?m)^\s*autopath(\s|$)`)

// AutopathCorefile adds `autopath @kubernetes` next to each kubernetes
// plugin of a Corefile and sets `pods verified` in its block (replacing
// `pods insecure` or `pods disabled`, adding the line when there is none).
// Rewriting a Corefile it already rewrote changes nothing. A Corefile
// without a kubernetes plugin is refused: autopath @kubernetes needs one.
func AutopathCorefile(corefile string) (string, error) {
	lines := strings.Split(corefile, "\n")
	hasAutopath := autopathLine.MatchString(corefile)
	var out []string
	found := false
	for i := 0; i < len(lines); i++ {
		m := kubernetesLine.FindStringSubmatch(lines[i])
		if m == nil {
			out = append(out, lines[i])
			continue
		}
		found = true
		indent := m[1]
		if !hasAutopath {
			out = append(out, indent+"autopath @kubernetes")
		}
		if m[2] == "" { // no block: give it one
			out = append(out, strings.TrimRight(lines[i], " \t")+" {", indent+"   pods verified", indent+"}")
			continue
		}
		out = append(out, lines[i])
		inner, podsSet, depth := indent+"   ", false, 1
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			fields := strings.Fields(l)
			if depth == 1 && len(fields) > 0 && fields[0] != "}" {
				inner = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			}
			if depth == 1 && len(fields) > 0 && fields[0] == "pods" {
				out = append(out, inner+"pods verified")
				podsSet = true
				continue
			}
			depth += strings.Count(l, "{") - strings.Count(l, "}")
			if depth <= 0 {
				if !podsSet {
					out = append(out, inner+"pods verified")
				}
				out = append(out, l)
				break
			}
			out = append(out, l)
		}
		if j == len(lines) {
			return "", fmt.Errorf("coredns Corefile: the kubernetes plugin's block (line %d) is never closed", i+1)
		}
		i = j
	}
	if !found {
		return "", errors.New("coredns Corefile has no kubernetes plugin: autopath @kubernetes needs one (is this CoreDNS serving the cluster domain?)")
	}
	return strings.Join(out, "\n"), nil
}

// rewriteCoreDNS applies edit to CoreDNS's Corefile (configmap coredns in
// kube-system) and, when it changed, restarts the CoreDNS Deployment and
// waits until every replica runs the new Corefile. Restarting rather than
// waiting for the reload plugin makes the change certain when it returns.
func rewriteCoreDNS(ctx context.Context, cs kubernetes.Interface, edit func(string) (string, error)) error {
	cms := cs.CoreV1().ConfigMaps(namespace)
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("coredns configmap: %w", err)
	}
	corefile, err := edit(cm.Data["Corefile"])
	if err != nil {
		return err
	}
	if corefile == cm.Data["Corefile"] {
		// No restart: CoreDNS as it is must be ready (a new cluster's
		// first pods are not waited for: cluster.Spec.DNSRewired).
		return cluster.WaitCoreDNS(ctx, cs, timeout)
	}
	cm.Data["Corefile"] = corefile
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update coredns configmap: %w", err)
	}
	deploys := cs.AppsV1().Deployments(namespace)
	d, err := deploys.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("coredns deployment: %w", err)
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	sum := sha256.Sum256([]byte(corefile))
	d.Spec.Template.Annotations["labrun.dev/corefile"] = hex.EncodeToString(sum[:8])
	// kubeadm's readiness probe looks every 10 s: each restart would wait
	// up to that long per pod for a server that is ready in a moment.
	for i := range d.Spec.Template.Spec.Containers {
		if p := d.Spec.Template.Spec.Containers[i].ReadinessProbe; p != nil && p.PeriodSeconds > 1 {
			p.PeriodSeconds = 1
		}
	}
	if _, err := deploys.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("restart coredns: %w", err)
	}
	return cluster.WaitCoreDNS(ctx, cs, timeout)
}
