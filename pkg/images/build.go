// Package images is the offline image pipeline: everything a kind cluster of
// the lab runs is built on this machine from Debian packages and Go modules at
// the versions pinned in images/versions.yaml, through a content-addressed
// cache (a second build with nothing changed reuses everything; changing one
// version rebuilds only what depends on it). No registry is ever contacted.
package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Options configure a build.
type Options struct {
	Kubernetes string    // "" means the default version
	Cache      string    // "" means DefaultCache()
	Repo       string    // the labrun source tree; "" means found from the working directory
	Progress   io.Writer // step lines
	// Mirror, when set, makes Build also pull every published image
	// (images/published.yaml) but kind's node image through this registry
	// mirror, HOST[:PORT]:
	// what a scenario's images.mirror asks for.
	Mirror string
	// Addons, when not nil, names the only addon images (Plan.Addons:
	// "kube-router", "dnsmasq") to build: what the shapes at hand need, so a
	// first run builds nothing it does not use. Nil builds them all.
	Addons []string
	// LabOnly builds the lab's own images and the addons, not the node
	// image: for a cluster of the published node (nodeImage: published),
	// which has Kubernetes and its images already.
	LabOnly bool
}

// DefaultCache is $LABRUN_CACHE, else /var/cache/labrun.
func DefaultCache() string {
	if c := os.Getenv("LABRUN_CACHE"); c != "" {
		return c
	}
	return "/var/cache/labrun"
}

// neededBytes is what a cold build needs free: Go build cache, rootfs
// tarballs, image tarballs and the node image in Docker.
const neededBytes = 12 << 30

// Prepare checks the machine, loads the versions and lays out the plan.
func Prepare(ctx context.Context, o *Options) (*Plan, *Runner, error) {
	v, err := LoadVersions()
	if err != nil {
		return nil, nil, err
	}
	k, err := v.Kube(o.Kubernetes)
	if err != nil {
		return nil, nil, err
	}
	if o.Cache == "" {
		o.Cache = DefaultCache()
	}
	if o.Repo == "" {
		if o.Repo, err = FindRepo(); err != nil {
			return nil, nil, err
		}
	}
	if os.Geteuid() != 0 {
		return nil, nil, fmt.Errorf("images build must run as root (debootstrap, Docker)")
	}
	d := &Docker{}
	if err := d.Check(ctx); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Cache, "tmp"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("cache %s: %w", o.Cache, err)
	}
	if err := checkDisk(o.Cache); err != nil {
		return nil, nil, err
	}
	return NewPlan(v, k, o.Repo), &Runner{Cache: o.Cache, Progress: o.Progress, Docker: d, Parallel: 2}, nil
}

// Build builds every image the lab needs for one Kubernetes version.
func Build(ctx context.Context, o Options) (*Plan, error) {
	p, r, err := Prepare(ctx, &o)
	if err != nil {
		return nil, err
	}
	unlock, err := lockCache(ctx, o.Cache, o.Progress)
	if err != nil {
		return nil, err
	}
	defer unlock()
	roots, err := p.Roots(o.Addons)
	if o.LabOnly {
		roots, err = p.LabRoots(o.Addons)
	}
	if err != nil {
		return p, err
	}
	if err := r.Run(ctx, roots...); err != nil {
		return p, err
	}
	if o.Mirror != "" {
		list, err := LoadPublished()
		if err != nil {
			return p, err
		}
		if _, err := PullAll(ctx, WithoutNode(list), PullOptions{Cache: o.Cache, Mirror: o.Mirror, Progress: o.Progress}); err != nil {
			return p, fmt.Errorf("published images through mirror %s: %w", o.Mirror, err)
		}
	}
	return p, nil
}

// lockCache serialises builds that share a cache (two labrun processes would
// otherwise build the same node image in the same build container).
func lockCache(ctx context.Context, cache string, progress io.Writer) (func(), error) {
	f, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		if progress != nil {
			fmt.Fprintf(progress, "images: waiting for another build using %s\n", cache)
		}
		done := make(chan error, 1)
		go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w", cache, err)
			}
		case <-ctx.Done():
			f.Close() // the pending flock ends with the file
			return nil, ctx.Err()
		}
	}
	return func() { f.Close() }, nil
}

func checkDisk(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("disk space of %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < neededBytes {
		return fmt.Errorf("too little disk: %s has %.1f GiB free, a cold image build needs about %d GiB (set LABRUN_CACHE to a bigger disk)",
			dir, float64(free)/(1<<30), neededBytes>>30)
	}
	return nil
}

// FindRepo returns the labrun source tree containing the working directory.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module labrun.dev/labrun\n") {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("run labrun from its source tree (no go.mod of labrun.dev/labrun above %s): it builds the lab's own daemons from it", dir)
		}
	}
}
