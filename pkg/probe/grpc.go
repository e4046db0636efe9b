package probe

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"labrun.dev/labrun/pkg/sample"
)

// grpcScript is the Python side of the gRPC back ends: real gRPC C-core
// (python3-grpcio) resolving through c-ares or getaddrinfo.
//
//go:embed grpcpy/grpc_probe.py
var grpcScript string

// grpcResolver drives one Python worker per concurrent lookup over
// stdin/stdout. The worker times the lookup itself, from opening the channel
// to the end of one unary call to the lab's gRPC server.
type grpcResolver struct {
	workers chan *grpcWorker
	argv    [4]string // python, GRPC_DNS_RESOLVER, port, deadline
	mu      sync.Mutex
	all     []*grpcWorker
}

type grpcWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	waited bool // its process has been reaped
}

// resolverEnv is the GRPC_DNS_RESOLVER value for a gRPC back end.
func resolverEnv(backend string) string {
	if backend == GRPCNative {
		return "native"
	}
	return "ares"
}

func newGRPCResolver(cfg Config) (*grpcResolver, error) {
	g := &grpcResolver{workers: make(chan *grpcWorker, cfg.Concurrency)}
	g.argv = [4]string{cfg.Python, resolverEnv(cfg.Backend), strconv.Itoa(cfg.GRPCPort), strconv.FormatFloat(cfg.GRPCDeadline.Seconds(), 'f', -1, 64)}
	for i := 0; i < cfg.Concurrency; i++ {
		w, err := startGRPCWorker(g.argv)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("back end %s: %w", cfg.Backend, err)
		}
		g.all = append(g.all, w)
		g.workers <- w
	}
	return g, nil
}

func startGRPCWorker(argv [4]string) (*grpcWorker, error) {
	python, resolver, port, deadline := argv[0], argv[1], argv[2], argv[3]
	cmd := exec.Command(python, "-c", grpcScript, "worker", port, deadline)
	cmd.Env = append(os.Environ(), "GRPC_DNS_RESOLVER="+resolver)
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
		return nil, fmt.Errorf("start %s: %w", python, err)
	}
	w := &grpcWorker{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	line, err := w.stdout.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the gRPC worker (%s with grpcio) did not start: %v: %s", python, err, strings.TrimSpace(stderr.String()))
	}
	return w, nil
}

func (g *grpcResolver) Lookup(ctx context.Context, name string) Outcome {
	var w *grpcWorker
	select {
	case w = <-g.workers:
	case <-ctx.Done():
		return Outcome{Result: sample.Error, Err: ctx.Err().Error()}
	}
	defer func() { g.workers <- w }()
	_, err := io.WriteString(w.stdin, name+"\n")
	var line []byte
	if err == nil {
		line, err = w.stdout.ReadBytes('\n')
	}
	if err != nil {
		// The worker died: this lookup is an error, the next one gets a new worker.
		out := Outcome{Result: sample.Error, Err: fmt.Sprintf("gRPC worker: %v", err)}
		if nw, rerr := g.replace(w); rerr != nil {
			out.Err += "; restarting it: " + rerr.Error()
		} else {
			w = nw
		}
		return out
	}
	var reply struct {
		Result string `json:"result"`
		Error  string `json:"error"`
		TookUS int64  `json:"took_us"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return Outcome{Result: sample.Error, Err: fmt.Sprintf("gRPC worker said %q: %v", line, err)}
	}
	out := Outcome{Result: sample.Result(reply.Result), Err: reply.Error, Took: time.Duration(reply.TookUS) * time.Microsecond}
	switch out.Result {
	case sample.OK, sample.NXDomain, sample.Timeout, sample.Error:
	default:
		return Outcome{Result: sample.Error, Err: fmt.Sprintf("gRPC worker: unknown result %q", reply.Result)}
	}
	return out
}

// replace ends a dead worker and starts another in its place.
func (g *grpcResolver) replace(dead *grpcWorker) (*grpcWorker, error) {
	g.mu.Lock()
	if !dead.waited {
		dead.stdin.Close()
		_ = dead.cmd.Process.Kill()
		_ = dead.cmd.Wait()
		dead.waited = true
	}
	g.mu.Unlock()
	w, err := startGRPCWorker(g.argv)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.all {
		if x == dead {
			g.all[i] = w
		}
	}
	return w, nil
}

// Close ends every worker (closing stdin ends its loop) and waits for it.
func (g *grpcResolver) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, w := range g.all {
		if w.waited {
			continue
		}
		w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			errs = append(errs, err)
		}
		w.waited = true
	}
	g.all = nil
	return errors.Join(errs...)
}

// GRPCServerArgv is the command line of the lab's gRPC server, listening on
// addr (e.g. "[::]:50051"): any unary method answers an empty message. Run it
// with StartGRPCServer, wrapped as needed (ip netns exec ..., a container).
func GRPCServerArgv(python, addr string) []string {
	return []string{python, "-c", grpcScript, "serve", addr}
}

// StartGRPCServer starts cmd (built from GRPCServerArgv) and returns once the
// server listens. The caller owns the process: kill or cancel it, then Wait.
func StartGRPCServer(cmd *exec.Cmd) error {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start gRPC server: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("gRPC server did not start: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
