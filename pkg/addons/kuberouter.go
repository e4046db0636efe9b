package addons

import (
	"errors"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

// KubeRouter is the kube-router pod network. Not written yet (issue 6).
func KubeRouter(plan *images.Plan) (cluster.PodNetwork, error) {
	return nil, errors.New("podNetwork kube-router is not set up by the lab yet (issue 6)")
}
