//go:build e2e

package pubnode

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

const (
	scenarioFile = "testdata/published.yaml"
	prefix       = "labrun-e2epub"
)

// privateCache is an artifact cache whose built artifacts are the machine's
// (nothing is rebuilt) but whose store of published images is the test's
// own: the stand-in for kindest/node must never be found by a real run.
func privateCache(t *testing.T) string {
	t.Helper()
	dir, shared := t.TempDir(), images.DefaultCache()
	for _, sub := range []string{"artifacts", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(shared, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The machine's build lock too: builds into the shared artifacts wait
	// for each other.
	f, err := os.OpenFile(filepath.Join(shared, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, sub := range []string{"artifacts", "logs", "tmp", "lock"} {
		if err := os.Symlink(filepath.Join(shared, sub), filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// standIn is the lab's plain node image (built here; Kubernetes and the
// components preloaded, not the lab's own images) without tcpdump, as
// kindest/node has none: an image layer whiting it out.
func standIn(t *testing.T, ctx context.Context) v1.Image {
	t.Helper()
	v, err := images.LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	node := images.NodeImage(v.Kubernetes[0])
	saved := filepath.Join(t.TempDir(), "node.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", saved, node).CombinedOutput(); err != nil {
		t.Fatalf("docker save %s (make images builds it): %v: %s", node, err, out)
	}
	tag, err := name.NewTag(node)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(saved, &tag)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "usr/bin/.wh.tcpdump", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestE2EPublishedNode(t *testing.T) {
	var (
		run    *e2ekit.Run
		served v1.Hash
		node   images.Published
	)
	f := features.New("a cluster of the published node image, pulled through a mirror").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			cache := privateCache(t)
			t.Setenv("LABRUN_CACHE", cache)
			list, err := images.LoadPublished()
			if err != nil {
				t.Fatal(err)
			}
			found, err := images.FindPublished(list, "kind-node")
			if err != nil {
				t.Fatal(err)
			}
			node = found[0]
			// The test tags its stand-in under this name and removes it:
			// never a user's own copy of kind's image.
			if err := exec.CommandContext(ctx, "docker", "image", "inspect", node.Ref).Run(); err == nil {
				t.Skipf("Docker holds %s already; the test would replace it with its stand-in", node.Ref)
			}
			// The mirror serves the stand-in under kindest/node's name.
			srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
			t.Cleanup(srv.Close)
			mirror := "http://" + strings.TrimPrefix(srv.URL, "http://")
			dst, err := images.PullRef(node.Ref, mirror)
			if err != nil {
				t.Fatal(err)
			}
			img := standIn(t, ctx)
			if err := remote.Write(dst, img); err != nil {
				t.Fatalf("push the stand-in to %s: %v", dst, err)
			}
			if served, err = img.Digest(); err != nil {
				t.Fatal(err)
			}
			// kind's real pin is refused: the mirror serves something else.
			_, err = images.Pull(ctx, node, images.PullOptions{Cache: cache, Mirror: mirror})
			if !errors.Is(err, images.ErrDigestMismatch) || !strings.Contains(err.Error(), node.Digest) {
				t.Fatalf("pull of %s at kind's digest from a mirror serving another image: %v, want a digest mismatch naming the pin", node.Ref, err)
			}
			// Pinned to what the mirror serves, it is pulled.
			pinned := node
			pinned.Digest = served.String()
			if _, err := images.Pull(ctx, pinned, images.PullOptions{Cache: cache, Mirror: mirror}); err != nil {
				t.Fatalf("pull %s: %v", pinned.Pinned(), err)
			}
			// Docker must load it from the cache: no stale tag of it.
			exec.CommandContext(ctx, "docker", "rmi", node.Ref).Run()
			t.Cleanup(func() { exec.Command("docker", "rmi", node.Ref).Run() })
			run = e2ekit.RunScenario(ctx, t, scenarioFile, prefix)
			return ctx
		}).
		Assess("every cell complete, the race seen and fixed", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, c := range run.Summary.Cells {
				if c.State != results.Complete {
					t.Errorf("cell %s: %s, want complete", c.ID, c.State)
				}
			}
			verdicts := map[int]string{}
			for _, c := range run.Summary.Claims {
				verdicts[c.N] = string(c.Verdict)
			}
			for _, n := range []int{1, 2} {
				if verdicts[n] != "pass" {
					t.Errorf("claim %d: %q, want pass (claims: %v)", n, verdicts[n], verdicts)
				}
			}
			return ctx
		}).
		Assess("the nodes run the pulled image; env.json says where it came from", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := run.Cluster(t, "pub")
			for _, n := range c.Nodes {
				out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.Config.Image}}", n.Name).Output()
				if err != nil || strings.TrimSpace(string(out)) != node.Ref {
					t.Errorf("node %s runs %q (%v), want %s", n.Name, strings.TrimSpace(string(out)), err, node.Ref)
				}
			}
			env, ok, err := run.Result.Run.ReadEnv()
			if err != nil || !ok {
				t.Fatalf("env.json: %v %v", ok, err)
			}
			var rec *results.Image
			for i, img := range env.Images {
				if img.Name == node.Ref {
					rec = &env.Images[i]
				}
				if strings.HasPrefix(img.Name, images.NodeRepo+":") {
					t.Errorf("env.json lists the built node image %s in a run of the published one", img.Name)
				}
			}
			if rec == nil || rec.Digest != served.String() || rec.Source != "pulled" {
				t.Errorf("env.json images: %+v, want %s at %s, pulled", env.Images, node.Ref, served)
			}
			if got := env.Extra[c.Name+".nodeImage"]; !strings.Contains(got, served.String()) || !strings.Contains(got, "pulled") {
				t.Errorf("env.json %s.nodeImage = %q, want the digest and where it was pulled from", c.Name, got)
			}
			// Pulled at another pin than kind's: the run says so.
			if got := env.Extra[c.Name+".nodeImage.unpinned"]; !strings.Contains(got, "not the pinned "+node.Digest) {
				t.Errorf("env.json %s.nodeImage.unpinned = %q, want it to name kind's pin %s", c.Name, got, node.Digest)
			}
			return ctx
		}).
		Assess("without tcpdump in the node image the cells run without captures", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, c := range run.Summary.Cells {
				if _, ok, _ := run.Result.Run.ReadCaptureSummary(c.ID); ok {
					t.Errorf("cell %s has a capture summary, but its nodes have no tcpdump", c.ID)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
