package kind

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
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
