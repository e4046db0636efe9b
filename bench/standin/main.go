// Command standin puts a stand-in for kind's published node image
// (images/published.yaml, kind-node) into the artifact cache the way a user's
// `labrun images pull kind-node --mirror …` does, for benchmarks on machines
// that reach no registry: a registry in this process serves the lab's own
// plain node image (docker save) under kindest/node's name, and the image is
// pulled from it, pinned to the digest it serves (kind's real pin names an
// image this machine cannot have). It prints what it pulled and how long the
// push and the pull took.
//
//	LABRUN_CACHE=DIR go run ./bench/standin   (DIR: a cache of the benchmark's own)
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"labrun.dev/labrun/pkg/images"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// The stand-in must never be found as kind's image by a real run.
	if c := os.Getenv("LABRUN_CACHE"); c == "" || filepath.Clean(c) == "/var/cache/labrun" {
		return fmt.Errorf("set LABRUN_CACHE to a cache of the benchmark's own, not the machine's (%s): the stand-in would be taken for kind's image there", images.DefaultCache())
	}
	v, err := images.LoadVersions()
	if err != nil {
		return err
	}
	list, err := images.LoadPublished()
	if err != nil {
		return err
	}
	found, err := images.FindPublished(list, "kind-node")
	if err != nil {
		return err
	}
	node := found[0]
	plain := images.NodeImage(v.Kubernetes[0])
	dir, err := os.MkdirTemp("", "standin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	saved := filepath.Join(dir, "node.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", saved, plain).CombinedOutput(); err != nil {
		return fmt.Errorf("docker save %s (make images builds it): %v: %s", plain, err, out)
	}
	tag, err := name.NewTag(plain)
	if err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(saved, &tag)
	if err != nil {
		return err
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	mirror := "http://" + strings.TrimPrefix(srv.URL, "http://")
	dst, err := images.PullRef(node.Ref, mirror)
	if err != nil {
		return err
	}
	if err := remote.Write(dst, img); err != nil {
		return fmt.Errorf("push %s: %w", dst, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	pushed := time.Since(start)
	start = time.Now()
	node.Digest = digest.String()
	rec, err := images.Pull(ctx, node, images.PullOptions{Mirror: mirror})
	if err != nil {
		return err
	}
	fmt.Printf("stand-in %s (the lab's %s) served at %s: saved and pushed in %s, pulled in %s (%s)\n",
		node.Ref, plain, digest, pushed.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond), rec.From)
	return nil
}
