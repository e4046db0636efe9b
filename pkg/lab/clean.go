package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/egress"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/images"
)

// Clean deletes everything the lab made on this machine, found by name and
// label, with no state file: lab clusters, build containers, and
// the docker network and empty /lib/modules folder kind leaves behind.
// With a prefix ("" for all) it deletes only the clusters a run with
// --cluster-prefix made (prefix-…), and what the host holds for every lab
// cluster (the egress guard, kind's network) only once none is left.
func Clean(ctx context.Context, provider cluster.Provider, prefix string, progress io.Writer) error {
	var errs []string
	all, err := provider.List(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, n := range all {
		if prefix == "" || strings.HasPrefix(n, prefix+"-") {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if err := provider.Delete(ctx, n); err != nil {
			errs = append(errs, err.Error())
		}
	}
	// What every lab cluster shares goes only when none is left, decided
	// under the host lock: a cluster another run is creating holds it until
	// its nodes exist, so the list below counts it, or it has not ensured
	// the guard yet and will after this (pkg/cluster/kind's Create).
	unlock, err := cluster.LockHost(ctx, progress, "clean")
	if err != nil {
		return errors.Join(err, joined(errs))
	}
	defer unlock()
	left, err := provider.List(ctx)
	if err != nil {
		return errors.Join(err, joined(errs))
	}
	if others := len(left); others > 0 {
		if len(errs) > 0 {
			return joined(errs)
		}
		if prefix == "" {
			// Made by another run since the list above.
			fmt.Fprintf(progress, "clean: %d lab clusters deleted; %d lab clusters made meanwhile keep the egress guard and kind's network\n", len(names), others)
			return nil
		}
		fmt.Fprintf(progress, "clean: %d lab clusters %s-… deleted; %d other lab clusters keep the egress guard and kind's network\n", len(names), prefix, others)
		return nil
	}
	if r, err := (egress.Host{}).Remove(ctx); err != nil {
		errs = append(errs, err.Error())
	} else if r.Rules > 0 {
		fmt.Fprintf(progress, "clean: removed the egress guard (%s)\n", r)
	}
	if n, err := kind.RemoveJoinFiles(); err != nil {
		errs = append(errs, err.Error())
	} else if n > 0 {
		fmt.Fprintf(progress, "clean: removed the join files (CA, token) of %d clusters\n", n)
	}
	var d images.Docker
	docker := func(args ...string) string {
		out, err := d.Run(ctx, args...)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return out
	}
	if ids := strings.Fields(docker("ps", "-aq", "--filter", "name=^"+images.BuildContainerPrefix)); len(ids) > 0 {
		docker(append([]string{"rm", "-f", "-v"}, ids...)...)
		fmt.Fprintf(progress, "clean: removed %d build containers\n", len(ids))
	}
	if gone, err := (egress.Host{}).RemoveNetwork(ctx); err != nil {
		errs = append(errs, err.Error())
	} else if gone {
		fmt.Fprintf(progress, "clean: removed the %s docker network\n", egress.Network)
	}
	// Docker makes /lib/modules for kind's bind mount on hosts without it.
	if left := docker("ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster"); left == "" {
		if entries, err := os.ReadDir("/lib/modules"); err == nil && len(entries) == 0 {
			if os.Remove("/lib/modules") == nil {
				fmt.Fprintln(progress, "clean: removed the empty /lib/modules Docker made")
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("clean: %s", strings.Join(errs, "; "))
	}
	fmt.Fprintf(progress, "clean: %d lab clusters deleted; nothing of the lab is left\n", len(names))
	return nil
}

// joined is the problems of clean as one error, nil for none.
func joined(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("clean: %s", strings.Join(errs, "; "))
}
