//go:build e2e

// Package e2e tests the lab on real kind clusters built from the offline
// images. TestMain brings one cluster up (building the images first if they
// are missing) and, in Finish, exports its logs and deletes it, even after a
// failure. Where Docker cannot run, setup fails and says why: it never skips.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"labrun.dev/labrun/pkg/lab"
)

const clusterName = "labrun-e2e"

var (
	testenv env.Environment
	theLab  *lab.Lab
)

func TestMain(m *testing.M) {
	cfg := envconf.New()
	testenv = env.NewWithConfig(cfg)
	testenv.Setup(func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		upCtx, cancel := context.WithTimeout(ctx, 40*time.Minute)
		defer cancel()
		// A cluster left by an interrupted earlier run would make Create fail.
		_ = lab.Down(upCtx, clusterName, os.Stderr)
		start := time.Now()
		l, err := lab.Up(upCtx, lab.UpOptions{Name: clusterName, Progress: os.Stderr})
		if err != nil {
			return ctx, fmt.Errorf("bring the e2e cluster up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "e2e: cluster up (images + cluster + addons) in %s\n", time.Since(start).Round(time.Second))
		theLab = l
		cfg.WithKubeconfigFile(l.Cluster.Kubeconfig)
		return ctx, nil
	})
	testenv.Finish(func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		dir := filepath.Join(os.TempDir(), "labrun-e2e-logs")
		os.RemoveAll(dir)
		if err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).CollectLogs(clusterName, dir); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: export logs: %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: cluster logs exported to %s\n", dir)
		}
		start := time.Now()
		err := lab.Down(context.WithoutCancel(ctx), clusterName, os.Stderr)
		fmt.Fprintf(os.Stderr, "e2e: cluster down in %s\n", time.Since(start).Round(100*time.Millisecond))
		return ctx, err
	})
	os.Exit(testenv.Run(m))
}
