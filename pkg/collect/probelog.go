package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/workload"
)

// ProbeLog is what was collected from one probe pod.
type ProbeLog struct {
	Probe  results.Probe // file, samples and the summary line, for the accounting
	Slow   uint64        // samples of at least sample.SlowUS
	Noise  []string      // the last lines that were not JSON (the probe's stderr)
	Commit error         // writing the raw file failed
}

// keptNoise is how many non-JSON lines a ProbeLog keeps for the reason.
const keptNoise = 3

// copySamples reads a probe's log (stdout and stderr interleaved, as the
// kubelet keeps them) and writes its JSON lines, samples and summary, to w.
// Other lines are the probe's stderr: kept aside, not written, so that the
// raw file holds only the sample format. Following a running probe, it
// returns at the summary line when that balances what was read: the probe
// is done, and the stream would only end once the kubelet saw it exit.
func copySamples(r io.Reader, w io.Writer, log *ProbeLog, follow bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] != '{' {
			log.Noise = append(log.Noise, string(line))
			if len(log.Noise) > keptNoise {
				log.Noise = log.Noise[1:]
			}
			continue
		}
		s, sum, err := sample.NewDecoder(bytes.NewReader(line)).Next()
		if err != nil {
			log.Noise = append(log.Noise, fmt.Sprintf("undecodable line: %v", err))
			continue
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write samples: %w", err)
		}
		if sum != nil {
			log.Probe.Summary = sum
			if follow && log.balanced() {
				return nil
			}
			continue
		}
		log.Probe.Samples++
		if s.DurationUS >= sample.SlowUS {
			log.Slow++
		}
	}
	return sc.Err()
}

// readProbeLog copies a probe pod's log into raw/<cell>/<pod>.jsonl: with
// follow, streamed (client-go) until the container exits or ctx ends; without,
// the whole log the kubelet kept. What was read is committed either way: an
// interrupted probe's partial file is measured data, and the accounting marks
// its cell incomplete.
func readProbeLog(ctx context.Context, cs kubernetes.Interface, run results.RunDir, cellID, namespace, pod string, follow bool) (*ProbeLog, error) {
	log := &ProbeLog{Probe: results.Probe{File: run.RawPath(cellID, pod)}}
	req := cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: workload.ProbeContainer, Follow: follow})
	stream, err := req.Stream(ctx)
	if err != nil {
		return log, fmt.Errorf("read the log of %s: %w", pod, err)
	}
	defer stream.Close()
	f, err := run.CreateRaw(cellID, pod)
	if err != nil {
		return log, err
	}
	copyErr := copySamples(stream, f, log, follow)
	if err := f.Commit(); err != nil {
		log.Commit = err
		return log, err
	}
	if copyErr != nil && ctx.Err() == nil {
		return log, fmt.Errorf("read the log of %s: %w", pod, copyErr)
	}
	return log, nil
}

// balanced reports whether the probe's summary line equals what was read.
func (l *ProbeLog) balanced() bool {
	return l.Probe.Summary != nil && l.Probe.Summary.Lookups == l.Probe.Samples
}

// Accounting is a cell's check that nothing was lost between the probes and
// the raw files.
type Accounting struct {
	Probes    int
	Expected  uint64 // what the probes' summary lines say they did
	Collected uint64 // samples written to raw files
	Problem   string // "" when every probe's summary equals its samples
}

// Account compares each probe's summary line with the samples collected
// from it; pods that left no log at all count as probes without a summary.
func Account(logs []*ProbeLog) Accounting {
	a := Accounting{Probes: len(logs)}
	probes := make([]results.Probe, 0, len(logs))
	var extra []string
	for _, l := range logs {
		probes = append(probes, l.Probe)
		a.Collected += l.Probe.Samples
		if l.Probe.Summary != nil {
			a.Expected += l.Probe.Summary.Lookups
		}
		if l.Commit != nil {
			extra = append(extra, l.Commit.Error())
		}
		if l.Probe.Summary == nil && len(l.Noise) > 0 {
			extra = append(extra, fmt.Sprintf("%s said: %s", l.Probe.File, strings.Join(l.Noise, " | ")))
		}
	}
	problems := []string{}
	if p := results.CheckProbes(probes); p != "" {
		problems = append(problems, p)
	}
	a.Problem = strings.Join(append(problems, extra...), "; ")
	return a
}
