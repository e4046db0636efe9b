package lab

import (
	"context"
	"strings"

	"labrun.dev/labrun/pkg/hostcheck"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// hostFacts is what the runner learned of the host before any cluster: the
// kernel features (hostcheck.Probe, once per run) and the published images
// the artifact cache holds.
type hostFacts struct {
	kernel hostcheck.Kernel
	err    error // the probe failed: no host reason is given, the cells run as planned
	have   hostcheck.HaveImage
}

func probeHost(ctx context.Context) hostFacts {
	k, err := hostcheck.Probe(ctx)
	return hostFacts{kernel: k, err: err, have: hostcheck.InCache(images.DefaultCache())}
}

// markHostLimits gives each cell whose cluster shape cannot run on this host
// the host's reason (kernel, missing published images). It is more precise
// than scenario.Unsupported's "not set up by the lab yet", so it replaces it;
// a "not applicable" cell makes no sense anywhere and keeps its reason.
func markHostLimits(cells []scenario.Cell, h hostFacts) {
	if h.err != nil {
		return
	}
	for i := range cells {
		c := &cells[i]
		if strings.HasPrefix(c.NotRun, "not applicable:") {
			continue
		}
		if r := hostcheck.NotRun(h.kernel, c.Shape.Cluster, h.have); r != "" {
			c.NotRun = r
		}
	}
}

// recordHost puts the probe's findings in env.json's extra:
// host_<feature> = "present", "absent: <evidence>" or "unknown: <evidence>",
// or host_error when the probe failed.
func recordHost(e *results.Env, h hostFacts) {
	if e.Extra == nil {
		e.Extra = map[string]string{}
	}
	if h.err != nil {
		e.Extra["host_error"] = "hostcheck: " + h.err.Error()
		return
	}
	for _, f := range hostcheck.Features {
		x := h.kernel.Finding(f)
		v := string(x.State)
		if x.State != hostcheck.Present {
			v += ": " + x.Evidence
		}
		e.Extra["host_"+string(f)] = v
	}
}

// PlanCells expands a scenario into its cells and marks those this host
// cannot run, with the host's reason, exactly as `run` will: what `labrun
// plan` shows.
func PlanCells(ctx context.Context, sc *scenario.Scenario) []scenario.Cell {
	cells := sc.Expand()
	markHostLimits(cells, probeHost(ctx))
	return cells
}
