package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A job is one step's build: its output folder, its log file, and a way to
// run commands whose failure names the command, its output and the log.
type job struct {
	step    *Step
	out     string // folder the step writes its files into
	logPath string
	log     *os.File
	docker  *Docker
}

func (r *Runner) newJob(s *Step, out string) (*job, error) {
	dir := filepath.Join(r.Cache, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, strings.ReplaceAll(s.Name, "/", "_")+".log")
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "# %s, %s\n", s.Name, time.Now().Format(time.RFC3339))
	return &job{step: s, out: out, logPath: p, log: f, docker: r.Docker}, nil
}

func (j *job) close() { j.log.Close() }

// File is a path in the job's output folder.
func (j *job) File(name string) string { return filepath.Join(j.out, name) }

// Cmd describes one command of a build.
type Cmd struct {
	Dir   string
	Env   []string // added to the process's environment
	Stdin io.Reader
	Args  []string
}

// run runs c, logging its output; on failure the error carries the command,
// the last lines of its output and the log's path.
func (j *job) run(ctx context.Context, c Cmd) error {
	_, err := j.output(ctx, c)
	return err
}

// output is run that also returns stdout.
func (j *job) output(ctx context.Context, c Cmd) ([]byte, error) {
	fmt.Fprintf(j.log, "\n$ %s\n", strings.Join(c.Args, " "))
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	killGroupOnCancel(cmd)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	var stdout, tail bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, j.log)
	cmd.Stderr = io.MultiWriter(&tail, j.log)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out := lastLines(tail.String()+stdout.String(), 15)
		return nil, fmt.Errorf("command %q failed: %w\n%s\n(full log: %s)", strings.Join(c.Args, " "), err, out, j.logPath)
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
