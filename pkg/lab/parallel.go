package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"labrun.dev/labrun/pkg/scenario"
)

// NodeMemory is the memory one kind node is estimated to take while a cell
// runs on it: kubelet, containerd, the static pods of a control plane or
// the probes and agent of a worker, and the page cache they keep warm. It is
// an estimate, not a measurement of every shape (a control plane takes more
// than a worker, a pod network adds its agents); --parallel checks the
// clusters it runs at once against MemAvailable with it.
const NodeMemory = 600 << 20

// ParallelAuto as RunOptions.Parallel picks how many shapes run at once
// (AutoParallel): the shapes to run, the clusters memory holds, the CPUs.
const ParallelAuto = -1

// ErrTooParallel is returned (wrapped) when more clusters than memory holds
// were asked to run at once; nothing was run.
var ErrTooParallel = errors.New("too many clusters at once for this machine's memory")

// machine is what bounds --parallel.
type machine struct {
	memAvailable uint64 // bytes, /proc/meminfo's MemAvailable
	memErr       error  // it could not be read: memory bounds nothing
	cpus         int
}

// readMachine reads MemAvailable and the CPUs this process may use.
func readMachine() machine {
	m := machine{cpus: runtime.NumCPU()}
	m.memAvailable, m.memErr = memAvailable("/proc/meminfo")
	return m
}

// memAvailable is the MemAvailable line of a /proc/meminfo file, in bytes.
func memAvailable(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: MemAvailable: %q", path, rest)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemAvailable: %w", path, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemAvailable", path)
}

// shapeNodes is how many nodes each shape's cluster has, with its lanes
// (shapeLanes) of workers.
func shapeNodes(shapes []scenario.PlanShape, lanes []int) []int {
	out := make([]int, len(shapes))
	for i, ps := range shapes {
		s := specFor(ps.Shape.Cluster)
		out[i] = s.ControlPlanes + s.Workers*lanes[i]
	}
	return out
}

// checkLanes says what does not fit when a cluster with lanes of cells side
// by side does not fit in memory on its own.
func checkLanes(nodes, lanes []int, m machine) error {
	if m.memErr != nil {
		return nil
	}
	for i, n := range nodes {
		if lanes[i] > 1 && uint64(n)*NodeMemory > m.memAvailable {
			return fmt.Errorf("a cluster of %d nodes needs ≈ %s (%d MiB a node), %s available",
				n, gib(uint64(n)*NodeMemory), NodeMemory>>20, gib(m.memAvailable))
		}
	}
	return nil
}

// largest are the n largest node counts, largest first.
func largest(nodes []int, n int) []int {
	s := slices.Clone(nodes)
	slices.SortFunc(s, func(a, b int) int { return b - a })
	return s[:min(n, len(s))]
}

// fitClusters is how many of the clusters (their node counts) fit in avail
// bytes at once, whichever of them run together: the largest first.
func fitClusters(nodes []int, avail uint64) int {
	var need uint64
	for i, n := range largest(nodes, len(nodes)) {
		need += uint64(n) * NodeMemory
		if need > avail {
			return i
		}
	}
	return len(nodes)
}

// AutoParallel is what --parallel auto runs at once: no more clusters than
// shapes, than memory holds (fit) and than CPUs; at least one.
func AutoParallel(shapes, fit, cpus int) int {
	return max(1, min(shapes, fit, cpus))
}

// gib formats bytes in GiB with one decimal.
func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// parallelism is how many shapes run at once for --parallel want (0 and 1:
// one after another, unchecked, as before --parallel existed;
// ParallelAuto: AutoParallel), given each shape's node count and the
// machine, with the lines that say why. It fails when more clusters were
// asked for than memory holds; more than CPUs only earns a warning (a
// cell's probes mostly wait on 5 s timeouts).
func parallelism(want int, nodes []int, m machine) (int, []string, error) {
	if want < 0 && want != ParallelAuto {
		return 0, nil, fmt.Errorf("--parallel %d: want a number of clusters ≥ 1, or auto", want)
	}
	if want == 0 || want == 1 || len(nodes) <= 1 {
		return 1, nil, nil
	}
	fit := len(nodes)
	var notes []string
	if m.memErr != nil {
		notes = append(notes, fmt.Sprintf("parallel: memory available unknown (%v): not checked", m.memErr))
	} else {
		fit = fitClusters(nodes, m.memAvailable)
	}
	if want == ParallelAuto {
		n := AutoParallel(len(nodes), fit, m.cpus)
		mem := "memory not checked"
		if m.memErr == nil {
			mem = fmt.Sprintf("memory for %d at ≈ %d MiB a node (%s available)", fit, NodeMemory>>20, gib(m.memAvailable))
		}
		notes = append(notes, fmt.Sprintf("parallel: auto: %d at once (%d cluster shapes, %s, %d CPUs)", n, len(nodes), mem, m.cpus))
		return n, notes, nil
	}
	n := min(want, len(nodes))
	if n > fit {
		big := largest(nodes, n)
		total := 0
		for _, k := range big {
			total += k
		}
		of := fmt.Sprintf("%d nodes", big[0])
		if big[0] != big[len(big)-1] {
			of = fmt.Sprintf("%d to %d nodes (%d in all)", big[len(big)-1], big[0], total)
		}
		most := fmt.Sprintf("at most %d fit", fit)
		switch fit {
		case 0:
			most = "not even one fits (the shapes can still run one after another, without --parallel)"
		case 1:
			most = "at most 1 fits: leave --parallel out"
		}
		return 0, nil, fmt.Errorf("--parallel %d: %d clusters of %s need ≈ %s (%d MiB a node), %s available; %s: %w",
			want, n, of, gib(uint64(total)*NodeMemory), NodeMemory>>20, gib(m.memAvailable), most, ErrTooParallel)
	}
	if n > m.cpus {
		notes = append(notes, fmt.Sprintf("parallel: warning: %d clusters at once on %d CPUs: their cells mostly wait on 5 s timeouts, but bring-up and the probes' timing compete for the CPUs", n, m.cpus))
	}
	return n, notes, nil
}

// lineSink writes the progress of shapes run side by side onto one writer,
// one Write at a time: each Write from a shapeWriter is whole lines.
type lineSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// shapeWriter is one shape's progress when shapes run side by side: it
// keeps a line until it is whole, then writes it to the sink in one Write,
// with "cluster NAME: " in front unless the line names the cluster or one
// of the shape's cells already.
type shapeWriter struct {
	mu    sync.Mutex
	sink  io.Writer
	name  string
	cells []string
	buf   []byte
}

func (w *shapeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	end := bytes.LastIndexByte(w.buf, '\n')
	if end < 0 {
		return len(p), nil
	}
	out := w.named(w.buf[:end+1])
	w.buf = append(w.buf[:0], w.buf[end+1:]...)
	if _, err := w.sink.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a last line that has no newline yet.
func (w *shapeWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.sink.Write(w.named(append(w.buf, '\n')))
		w.buf = nil
	}
}

// named puts the cluster's name in front of each line that does not say it.
func (w *shapeWriter) named(lines []byte) []byte {
	var out []byte
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		line := lines[:i+1]
		lines = lines[i+1:]
		if !w.says(line) {
			out = append(out, "cluster "+w.name+": "...)
		}
		out = append(out, line...)
	}
	return out
}

func (w *shapeWriter) says(line []byte) bool {
	if bytes.Contains(line, []byte(w.name)) {
		return true
	}
	for _, c := range w.cells {
		if bytes.Contains(line, []byte(c)) {
			return true
		}
	}
	return false
}
