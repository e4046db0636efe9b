package addons

import (
	"io"

	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

// Env is the cluster an addon installs into: its nodes (for node-level
// changes), a client, the images built for it (already loaded into the
// nodes: Plan.Lab always, Plan.Addons when the shape needs them) and where
// progress goes.
type Env struct {
	Cluster  *cluster.Cluster
	Client   kubernetes.Interface
	Images   *images.Plan
	Progress io.Writer
	// Facts, when set, receives what an addon wants a run to record of the
	// cluster (env.json): which mode or stand-in ran, and why.
	Facts map[string]string
}

// Note records a fact of the cluster (nothing when Facts is nil).
func (e Env) Note(key, value string) {
	if e.Facts != nil {
		e.Facts[key] = value
	}
}
