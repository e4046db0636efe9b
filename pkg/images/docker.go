package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// BuildContainerPrefix names the pipeline's build containers, so that
// `labrun clean` finds them. (Not a label: `docker commit` would copy a
// container label into the image and onto every node made from it.)
const BuildContainerPrefix = "labrun-build-"

// Labels every image the pipeline makes carries.
const (
	LabelKey  = "dev.labrun.key"  // the step's content address
	LabelFrom = "dev.labrun.from" // what it was built from, for people
)

// Docker runs the docker CLI. Every failure names the command and its output,
// and says that `make deps` sets Docker up.
type Docker struct{}

func (Docker) cmd(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, "docker", args...)
	c.Stdin = stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return out.Bytes(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Check fails with a clear message when Docker cannot be used.
func (d Docker) Check(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("docker is not installed: run `make deps`")
	}
	if _, err := d.cmd(ctx, nil, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("docker daemon does not answer (`docker info` failed; `make deps` starts it): %w", err)
	}
	return nil
}

// ImageLabel returns an image's label value, or "" if the image is absent.
func (d Docker) ImageLabel(ctx context.Context, image, label string) (string, error) {
	out, err := d.cmd(ctx, nil, "image", "inspect", "--format", fmt.Sprintf("{{index .Config.Labels %q}}", label), image)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// ImageInfo is what `images list` shows of a Docker image.
type ImageInfo struct {
	ID   string
	Size int64
	Key  string
	From string
}

// Inspect returns an image's ID, size and labels; ok is false if it is absent.
func (d Docker) Inspect(ctx context.Context, image string) (info ImageInfo, ok bool) {
	f := fmt.Sprintf("{{.Id}}|{{.Size}}|{{index .Config.Labels %q}}|{{index .Config.Labels %q}}", LabelKey, LabelFrom)
	out, err := d.cmd(ctx, nil, "image", "inspect", "--format", f, image)
	if err != nil {
		return info, false
	}
	parts := strings.SplitN(strings.TrimSpace(string(out)), "|", 4)
	if len(parts) != 4 {
		return info, false
	}
	info.ID, info.Key, info.From = parts[0], parts[2], parts[3]
	fmt.Sscan(parts[1], &info.Size)
	return info, true
}

// Run runs docker with args and returns stdout.
func (d Docker) Run(ctx context.Context, args ...string) (string, error) {
	out, err := d.cmd(ctx, nil, args...)
	return strings.TrimSpace(string(out)), err
}

// RunStdin runs docker with stdin.
func (d Docker) RunStdin(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	out, err := d.cmd(ctx, stdin, args...)
	return strings.TrimSpace(string(out)), err
}
