package collect

import (
	"context"
	"fmt"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"labrun.dev/labrun/internal/version"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

const kindModule = "sigs.k8s.io/kind"

// HostEnv is what env.json says of this machine: kernel, Docker, kind, and
// the race emulator's settings in the cells that will run.
func HostEnv(ctx context.Context, cells []scenario.Cell) results.Env {
	e := ClientEnv(ctx, cells)
	e.Docker, e.Kind = dockerVersion(ctx), moduleVersion(kindModule)
	return e
}

// ClientEnv is HostEnv without Docker and kind (no docker call): what
// env.json says of the machine that ran the cells on an existing cluster.
// Its kernel is not the nodes' (AddAdoptedEnv records theirs).
func ClientEnv(_ context.Context, cells []scenario.Cell) results.Env {
	e := results.Env{Kernel: kernel(), Extra: map[string]string{results.EnvLabrunVersion: version.String()}}
	var profiles, windows []string
	for _, c := range cells {
		if !c.Runs() || !c.UnderEmulator() {
			continue
		}
		e.Emulator = true
		r := c.Chaos.RaceEmulator
		if !slices.Contains(profiles, r.Profile) {
			profiles = append(profiles, r.Profile)
		}
		if w := r.Window.String(); !slices.Contains(windows, w) {
			windows = append(windows, w)
		}
	}
	if e.Emulator {
		e.Extra["emulator_profile"] = strings.Join(profiles, ",")
		e.Extra["emulator_window"] = strings.Join(windows, ",")
	}
	return e
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown: " + err.Error()
	}
	return strings.TrimSpace(unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:]))
}

func dockerVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		return "unknown: " + err.Error()
	}
	return strings.TrimSpace(string(out))
}

// moduleVersion is the version of a module linked into this binary.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}

// AddClusterEnv records the Kubernetes version a cluster runs and the images
// it ran: the node image (the lab's: its docker image ID; the published one
// (nil unless so): the digest its registry served) and the lab images in it
// (their image IDs, read from the tarballs that were preloaded or imported).
// addons are the addon images loaded into it for its shape; facts are what
// its set-up noted (env.json's extra, as CLUSTER.KEY).
func AddClusterEnv(ctx context.Context, e *results.Env, c *cluster.Cluster, plan *images.Plan, addons []*images.Step, facts map[string]string, published *images.PublishedNode) error {
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("server version of %s: %w", c.Name, err)
	}
	if e.Kubernetes == "" || e.Kubernetes == v.GitVersion {
		e.Kubernetes = v.GitVersion
	} else if !strings.Contains(e.Kubernetes, v.GitVersion) {
		e.Kubernetes += ", " + v.GitVersion
	}
	if published != nil {
		// As pulled (or imported): the registry's digest, not Docker's id.
		addImage(e, results.Image{Name: published.Ref, Digest: published.Record.Digest, Source: string(published.Record.Source)})
	} else {
		node := plan.LabNode.Image
		id, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", node).Output()
		if err != nil {
			return fmt.Errorf("inspect node image %s: %w", node, err)
		}
		addImage(e, results.Image{Name: node, Digest: strings.TrimSpace(string(id)), Source: "built"})
	}
	for _, s := range slices.Concat(plan.Lab, addons) {
		ref, err := images.ImageRef(s)
		if err != nil {
			return err
		}
		img, err := tarball.ImageFromPath(images.ImageTar(s), nil)
		if err != nil {
			return fmt.Errorf("read image %s: %w", ref, err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			return fmt.Errorf("image ID of %s: %w", ref, err)
		}
		addImage(e, results.Image{Name: ref, Digest: cfg.String(), Source: "built"})
	}
	if e.Extra == nil {
		e.Extra = map[string]string{}
	}
	if clusters := strings.Split(e.Extra["clusters"], ","); !slices.Contains(clusters, c.Name) {
		e.Extra["clusters"] = strings.TrimPrefix(e.Extra["clusters"]+","+c.Name, ",")
	}
	for k, v := range facts {
		e.Extra[c.Name+"."+k] = v
	}
	if e.Egress == "" {
		e.Egress = c.Egress
	} else if c.Egress != e.Egress && !strings.Contains(e.Egress, c.Egress) {
		e.Egress += "; " + c.Name + ": " + c.Egress
	}
	return nil
}

// AddAdoptedEnv records an existing cluster: its Kubernetes version, the
// shape read from it (facts, as CLUSTER.KEY), and the lab images its pods
// ran (by reference: the lab did not build them here). No docker call.
func AddAdoptedEnv(e *results.Env, c *cluster.Cluster, facts map[string]string) error {
	a := c.Adopted
	if a == nil {
		return fmt.Errorf("cluster %s: not an existing cluster", c.Name)
	}
	if v := a.Shape.Kubernetes; e.Kubernetes == "" || e.Kubernetes == v {
		e.Kubernetes = v
	} else if !strings.Contains(e.Kubernetes, v) {
		e.Kubernetes += ", " + v
	}
	refs := make([]string, 0, len(a.Images))
	for _, ref := range a.Images {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		addImage(e, results.Image{Name: ref, Source: "cluster"})
	}
	if e.Extra == nil {
		e.Extra = map[string]string{}
	}
	if clusters := strings.Split(e.Extra["clusters"], ","); !slices.Contains(clusters, c.Name) {
		e.Extra["clusters"] = strings.TrimPrefix(e.Extra["clusters"]+","+c.Name, ",")
	}
	e.Extra[c.Name+".namespace"] = a.Namespace
	for k, v := range facts {
		e.Extra[c.Name+"."+k] = v
	}
	return nil
}

func addImage(e *results.Env, img results.Image) {
	for _, have := range e.Images {
		if have == img {
			return
		}
	}
	e.Images = append(e.Images, img)
}
