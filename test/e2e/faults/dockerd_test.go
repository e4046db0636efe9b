//go:build e2e

package faults

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestE2EFaultDockerRestart restarts the Docker daemon under a cell's
// probes: the run fails that cell with the reason (its node restarted),
// cleans up and exits 1; --resume completes it. It stops every container of
// the machine, so it runs only when asked: LABRUN_E2E_RESTART_DOCKERD=1
// (.ci/run asks, where nothing else runs).
func TestE2EFaultDockerRestart(t *testing.T) {
	if os.Getenv("LABRUN_E2E_RESTART_DOCKERD") != "1" {
		t.Skip("restarts dockerd, stopping every container on this machine: set LABRUN_E2E_RESTART_DOCKERD=1 to run it")
	}
	restart := func() {
		t.Log("faults: restarting dockerd")
		exec.Command("pkill", "-TERM", "-x", "dockerd").Run()
		for i := 0; i < 300 && exec.Command("pgrep", "-x", "dockerd").Run() == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if err := startDockerd(); err != nil {
			t.Error(err)
			return
		}
		t.Log("faults: dockerd answers again")
	}
	testenv.Test(t, interrupted{
		name:     "the Docker daemon restarted while the probes run",
		fault:    fault{marker: cells[0] + ": probes running", after: 4 * time.Second, action: restart},
		wantCode: 1,
		statuses: map[string][2]string{cells[0]: {incomplete, "restarted"}, cells[1]: {anyState, ""}},
	}.feature("ftdockerd"))
}

// startDockerd starts dockerd as hack/deps.sh does (in a session of its own,
// logging to /var/log/labrun-dockerd.log) and waits up to a minute for it to
// answer.
func startDockerd() error {
	log, err := os.OpenFile("/var/log/labrun-dockerd.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	path, err := exec.LookPath("dockerd")
	if err != nil {
		return err
	}
	d := exec.Command("setsid", "nohup", path)
	d.Stdout, d.Stderr = log, log
	if err := d.Start(); err != nil {
		return err
	}
	go d.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil && exec.CommandContext(ctx, "docker", "info").Run() != nil {
		time.Sleep(200 * time.Millisecond)
	}
	return ctx.Err()
}
