package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// A family is shapes one cluster serves in turn: the same cluster, plain or
// with cluster-level mitigations the lab undoes exactly (addons.Undoable).
// The cluster comes up plain; each shape sets its mitigations up, runs its
// cells and undoes them, and the next shape runs only if the cluster's state
// (cluster.ReadState) is again the plain cluster's. Otherwise the rest of
// the family gets a fresh cluster. A bring-up costs more than a shape's
// three cells: the nightly's 19 clusters become 8. scenario.Families makes
// the families.

// after is what runs after shape si: the cells of the shapes after it in
// run order, how many clusters those bring up, and how many times a
// family's cluster switches from one shape to the next meanwhile.
func (s *runShared) after(si int) (cells []scenario.Cell, clusters, switches int) {
	seen := false
	for f, family := range s.families {
		for k, i := range family {
			if seen {
				cells = append(cells, s.shapes[i].Cells...)
				if k > 0 {
					switches++
				}
			}
			if i == si {
				seen, clusters = true, len(s.families)-f-1
			}
		}
	}
	return cells, clusters, switches
}

// switches is how many times families' clusters switch from one shape to the
// next.
func switches(families [][]int) int {
	n := 0
	for _, f := range families {
		n += len(f) - 1
	}
	return n
}

// runFamily runs a family's shapes on one cluster (reuse.go's comment), a
// family of one as runShape does. Each cell's status goes in reached, by
// shape. A shape that fails (its set-up, its cells) or a reset that does not
// return the plain cluster hands the shapes left a fresh cluster; a plain
// state that cannot be read, a cluster each.
func runFamily(ctx context.Context, o RunOptions, sh *runShared, family []int, reached []map[string]results.Status) error {
	if len(family) == 1 {
		return runShape(ctx, o, sh, family[0], reached[family[0]])
	}
	host := sh.shapes[family[0]].Shape
	// Families group shapes of equal lanes (scenario.Families): the
	// cluster's workers are what each shape's own cluster would have.
	l, down, err := upShape(ctx, o, sh, family[0], nil, sh.lanes[family[0]])
	if err != nil {
		return err
	}
	defer func() { down() }() // the down left when the function returns
	name := l.Cluster.Name
	// Each shape's facts start from the plain cluster's.
	facts := maps.Clone(l.Facts)
	plain, err := o.readState(ctx, l.Cluster)
	if err != nil {
		fmt.Fprintf(o.Progress, "cluster %s: %v; each shape of its family gets a cluster of its own\n", name, err)
		d := down
		down = func() {}
		d()
		var errs []error
		for _, si := range family {
			if ctx.Err() != nil {
				break
			}
			errs = append(errs, runShape(ctx, o, sh, si, reached[si]))
		}
		return errors.Join(errs...)
	}
	var ids []string
	for _, si := range family {
		ids = append(ids, sh.shapes[si].Shape.ID)
	}
	fmt.Fprintf(o.Progress, "cluster %s: serves shapes %s in turn, each cluster-level mitigation undone and the cluster checked after it\n",
		name, strings.Join(ids, ", "))
	for k, si := range family {
		shape := sh.shapes[si].Shape
		l.Facts = maps.Clone(facts)
		recorded, undo, err := serve(ctx, o, l, shape, host)
		if err == nil {
			err = runCells(ctx, o, sh, si, l, recorded, reached[si])
		}
		if ctx.Err() != nil || k == len(family)-1 {
			return err
		}
		start := time.Now()
		why := ""
		if err == nil {
			why = resetTo(ctx, o, l, undo, plain)
			if ctx.Err() != nil {
				return nil // interrupted: the caller marks the cells not reached
			}
		}
		if err == nil && why == "" {
			took := time.Since(start).Round(100 * time.Millisecond)
			fmt.Fprintf(o.Progress, "cluster %s: the plain cluster it was after shape %s (undone and checked in %s)\n", name, shape.ID, took)
			if len(shape.ClusterMitigations) > 0 {
				sh.note(recorded.Cluster.Name+".reset", "undone and checked in "+took.String()+": the plain cluster again")
			}
			continue
		}
		// A failed shape, or not provably the plain cluster: the rest of
		// the family gets a fresh one, and env.json says why.
		if err != nil {
			why = "shape " + shape.ID + " failed: " + err.Error()
			fmt.Fprintf(o.Progress, "cluster %s: %s; the shapes left get a fresh cluster\n", name, why)
		} else {
			fmt.Fprintf(o.Progress, "cluster %s: not the plain cluster it was after shape %s: %s; the shapes left get a fresh cluster\n", name, shape.ID, why)
		}
		sh.note(ClusterName(o.ClusterPrefix, shape.ID)+".resetFailed", why)
		d := down
		down = func() {}
		d()
		if ctx.Err() != nil {
			return err
		}
		return errors.Join(err, runFamily(ctx, o, sh, family[k+1:], reached))
	}
	return nil
}

// serve readies testbed l, brought up plain for its family's first shape
// host, for shape: it sets the shape's cluster-level mitigations up (none
// for the plain shape) and returns how to undo them, and the testbed as
// env.json records it for the shape: for a later shape, the cluster under
// the shape's own cluster name, with the cluster it reuses.
func serve(ctx context.Context, o RunOptions, l *Testbed, shape, host scenario.Shape) (*Testbed, addons.Undo, error) {
	g := l
	if shape.ID != host.ID {
		view := *l.Cluster
		view.Name = ClusterName(o.ClusterPrefix, shape.ID)
		g = &Testbed{Cluster: &view, Shape: shape.Cluster, Images: l.Images, Upstream: l.Upstream, GRPCServer: l.GRPCServer,
			Facts: maps.Clone(l.Facts), PublishedNode: l.PublishedNode, NoCapture: l.NoCapture}
		g.Facts["reusedFrom"] = l.Cluster.Name
	}
	g.Mitigations = shape.ClusterMitigations
	env := addons.Env{Cluster: l.Cluster, Images: l.Images, Progress: o.Progress, Facts: g.Facts}
	var undos []addons.Undo
	undo := func(ctx context.Context) error {
		var errs []error
		for _, u := range slices.Backward(undos) {
			errs = append(errs, u(ctx))
		}
		return errors.Join(errs...)
	}
	for _, m := range shape.ClusterMitigations {
		start := time.Now()
		u, err := o.setUpUndoable(ctx, env, m)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("cluster %s: %w", l.Cluster.Name, err), undo(ctx))
		}
		undos = append(undos, u)
		took := time.Since(start).Round(100 * time.Millisecond)
		env.Note("mitigation."+m, "set up in "+took.String()+" on "+l.Cluster.Name+", the cluster of shape "+host.ID)
		fmt.Fprintf(o.Progress, "cluster %s: mitigation %s set up for shape %s (%s)\n", l.Cluster.Name, m, shape.ID, took)
	}
	return g, undo, nil
}

// resetTo undoes a shape's mitigations and says why the cluster is not
// plain again ("" when it is): the undo's error, or what differs from it.
func resetTo(ctx context.Context, o RunOptions, l *Testbed, undo addons.Undo, plain cluster.State) string {
	if err := undo(ctx); err != nil {
		return err.Error()
	}
	now, err := o.readState(ctx, l.Cluster)
	if err != nil {
		return err.Error()
	}
	if diff := now.Diff(plain); len(diff) > 0 {
		return strings.Join(diff, "; ")
	}
	return ""
}

// note records a fact of the run in env.json.
func (s *runShared) note(key, value string) {
	s.envMu.Lock()
	defer s.envMu.Unlock()
	s.env.Extra[key] = value
	_ = s.run.WriteEnv(*s.env) // recorded with the next cluster's facts if this write fails
}
