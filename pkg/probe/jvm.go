package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"labrun.dev/labrun/pkg/sample"
)

// JVM cache variants of the jvm back end (Config.JVMCache). The report must
// say which ran: the JVM's own address cache hides the race from every lookup
// but the first of each name per TTL.
const (
	JVMCacheDefaults = "defaults" // JVM defaults: networkaddress.cache.ttl 30 s, negative.ttl 10 s
	JVMCacheOff      = "nocache"  // networkaddress.cache.ttl=0, networkaddress.cache.negative.ttl=0
)

// JVMClass is the main class of the Java worker (pkg/probe/jvm/LabProbe.java),
// compiled with openjdk-17-jdk-headless when the probe image is built.
const JVMClass = "LabProbe"

// jvmResolver drives one Java worker per concurrent lookup over stdin/stdout,
// the way grpcResolver drives its Python workers. The worker times
// InetAddress.getAllByName itself.
type jvmResolver struct {
	workers chan *jvmWorker
	argv    []string
	mu      sync.Mutex
	all     []*jvmWorker
}

type jvmWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	waited bool
}

// JVMArgv is the command line of one Java worker.
func JVMArgv(java, classPath, cache string) []string {
	return []string{java, "-cp", classPath, JVMClass, cache}
}

func newJVMResolver(cfg Config) (*jvmResolver, error) {
	j := &jvmResolver{workers: make(chan *jvmWorker, cfg.Concurrency), argv: JVMArgv(cfg.Java, cfg.JVMClassPath, cfg.JVMCache)}
	for i := 0; i < cfg.Concurrency; i++ {
		w, err := startJVMWorker(j.argv)
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("back end %s: %w", cfg.Backend, err)
		}
		j.all = append(j.all, w)
		j.workers <- w
	}
	return j, nil
}

func startJVMWorker(argv []string) (*jvmWorker, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	w := &jvmWorker{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	line, err := w.stdout.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the Java worker (%s) did not start: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return w, nil
}

// jvmReply is one line the Java worker writes.
type jvmReply struct {
	Answers   int    `json:"answers"`
	Exception string `json:"exception"`
	Error     string `json:"error"`
	TookUS    int64  `json:"took_us"`
}

// jvmOutcome maps a worker's reply to a result. The JVM reports every failure
// of getaddrinfo as UnknownHostException; its text carries gai_strerror:
// "Temporary failure in name resolution" (EAI_AGAIN) taking at least
// gaiTimeoutFloor is a timeout, as for the libc back ends.
func jvmOutcome(r jvmReply) Outcome {
	took := time.Duration(r.TookUS) * time.Microsecond
	text := r.Exception
	if r.Error != "" {
		text += ": " + r.Error
	}
	switch {
	case r.Exception == "" && r.Answers > 0:
		return Outcome{Result: sample.OK, Answers: r.Answers, Took: took}
	case r.Exception == "":
		return Outcome{Result: sample.NXDomain, Err: "no addresses", Took: took}
	case r.Exception == "java.net.UnknownHostException" && strings.Contains(r.Error, "Temporary failure in name resolution"):
		if took >= gaiTimeoutFloor {
			return Outcome{Result: sample.Timeout, Err: text, Took: took}
		}
		return Outcome{Result: sample.Error, Err: text, Took: took}
	case r.Exception == "java.net.UnknownHostException":
		return Outcome{Result: sample.NXDomain, Err: text, Took: took}
	}
	return Outcome{Result: sample.Error, Err: text, Took: took}
}

func (j *jvmResolver) Lookup(ctx context.Context, name string) Outcome {
	var w *jvmWorker
	select {
	case w = <-j.workers:
	case <-ctx.Done():
		return Outcome{Result: sample.Error, Err: ctx.Err().Error()}
	}
	defer func() { j.workers <- w }()
	_, err := io.WriteString(w.stdin, name+"\n")
	var line []byte
	if err == nil {
		line, err = w.stdout.ReadBytes('\n')
	}
	if err != nil {
		out := Outcome{Result: sample.Error, Err: fmt.Sprintf("Java worker: %v", err)}
		if nw, rerr := j.replace(w); rerr != nil {
			out.Err += "; restarting it: " + rerr.Error()
		} else {
			w = nw
		}
		return out
	}
	var r jvmReply
	if err := json.Unmarshal(line, &r); err != nil {
		return Outcome{Result: sample.Error, Err: fmt.Sprintf("Java worker said %q: %v", line, err)}
	}
	return jvmOutcome(r)
}

func (j *jvmResolver) replace(dead *jvmWorker) (*jvmWorker, error) {
	j.mu.Lock()
	if !dead.waited {
		dead.stdin.Close()
		_ = dead.cmd.Process.Kill()
		_ = dead.cmd.Wait()
		dead.waited = true
	}
	j.mu.Unlock()
	w, err := startJVMWorker(j.argv)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, x := range j.all {
		if x == dead {
			j.all[i] = w
		}
	}
	return w, nil
}

// Close ends every worker (closing stdin ends its loop) and waits for it.
func (j *jvmResolver) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, w := range j.all {
		if w.waited {
			continue
		}
		w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			errs = append(errs, err)
		}
		w.waited = true
	}
	j.all = nil
	return errors.Join(errs...)
}
