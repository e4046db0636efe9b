package diagnose

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/workload"
)

// Options are one diagnosis's choices.
type Options struct {
	ID string // names the namespace labrun-diag-<ID>
	// Wanted is the deepest tier asked for: TierFacts (--duration 0),
	// TierProbes, TierCounters (--allow-privileged).
	Wanted Tier
	Load   Load
	// Images are the probe images; an empty one is looked for among the
	// images the nodes hold (a lab cluster preloads them).
	Images   Images
	Progress io.Writer
	// Settle is how long counter pods read before and after the probes
	// (0: counterSettle); tests shorten it.
	Settle time.Duration
}

// Report is everything a diagnosis found, for the text and the JSON.
type Report struct {
	ID          string       `json:"id"`
	Facts       Facts        `json:"facts"`
	Access      Access       `json:"access"`
	Prediction  Prediction   `json:"prediction"`
	Measurement *Measurement `json:"measurement,omitempty"`
	// Skipped says why there is no measurement, when there is none.
	Skipped string  `json:"measurementSkipped,omitempty"`
	Verdict Verdict `json:"verdict"`
}

// Lab image names (pkg/images: image/probe-glibc, image/probe-musl), as
// their references start: "labrun/probe-glibc:<content key>".
const (
	LabProbeGlibc = "labrun/" + "probe-glibc"
	LabProbeMusl  = "labrun/" + "probe-musl"
)

// Run diagnoses the cluster behind cs: facts, access, prediction, then,
// tier permitting, a measurement, and the verdict. The report is returned
// with whatever was found even when err is not nil.
func Run(ctx context.Context, cs kubernetes.Interface, o Options) (*Report, error) {
	r := &Report{ID: o.ID}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "diagnose: "+format+"\n", a...)
		}
	}
	f, err := Gather(ctx, cs)
	if err != nil {
		return nil, err
	}
	r.Facts = f
	say("facts read: %d nodes, kube-proxy %s, %d DNS endpoints", len(f.Nodes), orUnknown(f.KubeProxy.Mode), len(f.DNS.Endpoints))
	r.Prediction = Predict(f)
	r.Access, err = CheckAccess(ctx, cs, o.ID, o.Wanted)
	if err != nil {
		return r, err
	}
	say("access: %s", r.Access.Tier)
	switch {
	case o.Wanted == TierFacts:
		r.Skipped = "not asked for (--duration 0)"
	case r.Access.Tier == TierFacts:
		r.Skipped = "not allowed: " + strings.Join(r.Access.Missing, "; ")
	}
	if r.Skipped == "" {
		switch {
		case len(ProbeNodes(f.Nodes, o.Load.Nodes)) == 0:
			r.Skipped = "no ready node to probe (or the nodes could not be listed)"
		case f.DNS.VIP == "":
			r.Skipped = "the cluster DNS VIP is unknown (Service kube-system/kube-dns not read)"
		}
	}
	if r.Skipped == "" {
		img := resolveImages(o.Images, f.Nodes)
		if img.Glibc == "" || img.Musl == "" {
			r.Skipped = fmt.Sprintf("no probe image: none of the nodes holds %s / %s (a lab cluster preloads them); pass --probe-image and --probe-image-musl with images the nodes can pull", LabProbeGlibc, LabProbeMusl)
		} else {
			m, err := Measure(ctx, cs, f, MeasureOptions{
				ID: o.ID, Load: o.Load, Images: img, Counters: r.Access.Tier >= TierCounters,
				ClusterDomain: clusterDomain(f), Progress: o.Progress, Settle: cmp.Or(o.Settle, counterSettle),
			})
			r.Measurement = m
			if err != nil {
				r.Verdict = Judge(f, r.Prediction, nil)
				return r, err
			}
			if m.Refused != "" {
				r.Skipped = "refused by admission: " + m.Refused
			}
		}
	}
	r.Verdict = Judge(f, r.Prediction, r.Measurement)
	return r, nil
}

// counterSettle is how long counter pods read before and after the probes:
// longer than their one-second period.
const counterSettle = 2500 * time.Millisecond

// resolveImages fills the images not given from those the nodes hold.
func resolveImages(img Images, nodes []Node) Images {
	// The kubelet reports the names containerd holds, normalised
	// ("docker.io/labrun/probe-glibc:<key>", and the same @sha256:…): a
	// tagged name of the repository, under any registry.
	find := func(repo string) string {
		for _, n := range nodes {
			for _, name := range n.Images {
				if strings.HasPrefix(name, repo+":") || strings.Contains(name, "/"+repo+":") {
					return name
				}
			}
		}
		return ""
	}
	if img.Glibc == "" {
		img.Glibc = find(LabProbeGlibc)
	}
	if img.Musl == "" {
		img.Musl = find(LabProbeMusl)
	}
	if img.PullPolicy == "" {
		// A node that holds the image does not pull it; one that does not
		// pulls a user's image from their registry.
		img.PullPolicy = corev1.PullIfNotPresent
	}
	return img
}

func clusterDomain(f Facts) string {
	if f.Kubelet != nil && f.Kubelet.ClusterDomain != "" {
		return f.Kubelet.ClusterDomain
	}
	return workload.DefaultClusterDomain
}
