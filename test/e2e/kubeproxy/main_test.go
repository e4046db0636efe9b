//go:build e2e

// Package kubeproxy tests a lab cluster whose kube-proxy runs in nftables
// mode (testdata/nftables.yaml): TestMain brings it up from the offline images
// and, in Finish, deletes it, even after a failure. It uses its own cluster
// name, so it never touches the main e2e suite's cluster.
package kubeproxy

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"labrun.dev/labrun/pkg/lab"
)

const clusterName = "labrun-e2e-nft"

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
		_ = lab.Down(upCtx, clusterName, os.Stderr) // left by an interrupted earlier run
		start := time.Now()
		l, err := lab.Up(upCtx, lab.UpOptions{Name: clusterName, Scenario: "testdata/nftables.yaml", Progress: os.Stderr})
		if err != nil {
			return ctx, fmt.Errorf("bring the kube-proxy nftables cluster up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "e2e: kube-proxy nftables cluster up in %s\n", time.Since(start).Round(time.Second))
		theLab = l
		cfg.WithKubeconfigFile(l.Cluster.Kubeconfig)
		return ctx, nil
	})
	testenv.Finish(func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		start := time.Now()
		err := lab.Down(context.WithoutCancel(ctx), clusterName, os.Stderr)
		fmt.Fprintf(os.Stderr, "e2e: cluster down in %s\n", time.Since(start).Round(100*time.Millisecond))
		return ctx, err
	})
	os.Exit(testenv.Run(m))
}
