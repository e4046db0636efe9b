package addons

import (
	"io"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

// Env is the cluster an addon installs into (its clientset, and its nodes
// for node-level changes), the images built for it (already loaded into the
// nodes: Plan.Lab always, Plan.Addons when the shape needs them) and where
// progress goes.
type Env struct {
	Cluster  *cluster.Cluster
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
