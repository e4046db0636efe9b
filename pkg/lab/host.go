package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
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

// axesOf lists the axis values (as images/published.yaml's forAxis names
// them) of the cells that are to run.
func axesOf(cells []scenario.Cell) []string {
	var out []string
	add := func(v string) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, c := range cells {
		if !c.Runs() {
			continue
		}
		add("podNetwork=" + c.Shape.Cluster.PodNetwork)
		add("nodeImage=" + c.Shape.Cluster.NodeImage)
		add("dns=" + c.Shape.Cluster.DNS.Server)
		for _, m := range c.Shape.ClusterMitigations {
			add("mitigation=" + m)
		}
	}
	return out
}

// pullThroughMirror pulls, through the user's registry mirror, the published
// images the cells need and the lab's store lacks, before the cells are
// marked with the host's limits (which then finds them). A failed pull is
// reported, not fatal: the cells that needed the image are then not run,
// with the host's reason.
func pullThroughMirror(ctx context.Context, mirror string, cells []scenario.Cell, progress io.Writer) error {
	list, err := images.LoadPublished()
	if err != nil {
		return err
	}
	cache := images.DefaultCache()
	axes := axesOf(cells)
	var need []images.Published
	for _, p := range list {
		if _, ok := images.FindStored(cache, p.Ref); ok {
			continue
		}
		if slices.ContainsFunc(axes, p.Needed) {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		return nil
	}
	fmt.Fprintf(progress, "images: pulling %d published image(s) through mirror %s\n", len(need), mirror)
	_, err = images.PullAll(ctx, need, images.PullOptions{Cache: cache, Mirror: mirror, Progress: progress})
	return err
}

// PlanCells expands a scenario into its cells and marks those this host
// cannot run, with the host's reason, exactly as `run` will: what `labrun
// plan` shows.
func PlanCells(ctx context.Context, sc *scenario.Scenario) []scenario.Cell {
	cells := sc.Expand()
	markHostLimits(cells, probeHost(ctx))
	return cells
}
