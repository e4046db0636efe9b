package kind

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// dockerBack bounds how long a node command or a deletion waits for a Docker
// daemon that stopped answering (a restart stops every container, ~10 s, and
// starts them again) before it fails.
const dockerBack = 2 * time.Minute

// dockerAnswers asks the daemon for its version.
func dockerAnswers(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker info: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// daemonGone reports whether a docker command failed because the daemon
// does not answer (rather than because of the command).
func daemonGone(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Cannot connect to the Docker daemon")
}

// waitDocker returns once check succeeds, polling every poll for at most
// limit, saying once on progress that it waits; it returns check's last
// error when limit passes, and ctx's when ctx ends.
func waitDocker(ctx context.Context, progress io.Writer, what string, check func(context.Context) error, limit, poll time.Duration) error {
	err := check(ctx)
	if err == nil {
		return nil
	}
	fmt.Fprintf(progress, "%s: the Docker daemon does not answer (%v): waiting up to %s for it to come back\n", what, err, limit)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		if err = check(ctx); err == nil {
			fmt.Fprintf(progress, "%s: the Docker daemon answers again\n", what)
			return nil
		}
	}
	return fmt.Errorf("%s: the Docker daemon did not answer within %s: %w", what, limit, err)
}

// checkNesting refuses, before any node starts, a Docker on which the pods
// of a node image that keeps its images unpacked (images.LabelSnapshots)
// could not start: their overlay mounts take lower layers from the node's own
// root file system, an overlay with Docker's overlay drivers, and overlays
// nest at most two deep, so a Docker whose data root is itself on an overlay
// (Docker in a container) would fail every pod's mount. A daemon whose data
// root this process cannot see (another machine's) is not checked.
func checkNesting(ctx context.Context, image, snapshots string) error {
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.Driver}}|{{.DockerRootDir}}").Output()
	if err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	driver, root, _ := strings.Cut(strings.TrimSpace(string(out)), "|")
	var st unix.Statfs_t
	onOverlay := unix.Statfs(root, &st) == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC
	return nestingProblem(image, snapshots, driver, root, onOverlay)
}

func nestingProblem(image, snapshots, driver, root string, rootOnOverlay bool) error {
	if !rootOnOverlay || !strings.HasPrefix(driver, "overlay") {
		return nil
	}
	return fmt.Errorf("node image %s keeps its images unpacked in %s, which its pods mount as overlay layers, but Docker's data root %s is itself on an overlay file system (storage driver %s): overlays nest at most two deep and every pod would fail to start; give Docker a data root on a plain file system (a volume or a host folder: dockerd --data-root)",
		image, snapshots, root, driver)
}
