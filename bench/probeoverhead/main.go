// Command probeoverhead measures the probe against a bare C loop of the same
// getaddrinfo call, and the most lookups per second one probe sustains, in a
// netlab (root; nothing leaves the machine). Run from the module root:
//
//	go run ./bench/probeoverhead [-n 2000] [-rounds 3] [-duration 3s]
//
// Overhead is compared two ways: the p50 of the library call as the probe
// times it (duration_us) against the bare loop's, and the p50 of the cycle
// (start of one lookup to the start of the next, which includes writing and
// flushing the sample) against the bare loop's cycle.
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"labrun.dev/labrun/internal/netlab"
	"labrun.dev/labrun/pkg/sample"
)

//go:embed csrc/gai_loop.c
var gaiLoop []byte

func main() {
	n := flag.Int("n", 2000, "lookups per round")
	rounds := flag.Int("rounds", 3, "rounds of bare loop and probe, interleaved")
	dur := flag.Duration("duration", 3*time.Second, "length of each throughput run")
	name := flag.String("name", "api.lab.example.", "name to look up (absolute: one A+AAAA pair per lookup)")
	flag.Parse()
	if err := run(*n, *rounds, *dur, *name); err != nil {
		fmt.Fprintf(os.Stderr, "probeoverhead: %v\n", err)
		os.Exit(1)
	}
}

func run(n, rounds int, dur time.Duration, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "probeoverhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := build(ctx, dir)
	if err != nil {
		return err
	}
	lab, err := netlab.New(ctx, netlab.Config{Clients: []string{"nameserver " + netlab.VIP + "\n"}})
	if err != nil {
		return err
	}
	defer lab.Close()
	ns := lab.Clients[0]

	var bareCall, bareCycle, goCall, goCycle, probeCall, probeCycle []float64
	for r := 0; r < rounds; r++ {
		for _, bare := range []struct {
			bin         string
			call, cycle *[]float64
		}{{"gai_loop", &bareCall, &bareCycle}, {"gobare", &goCall, &goCycle}} {
			out, err := lab.Run(ctx, ns, bins[bare.bin], name, strconv.Itoa(n))
			if err != nil {
				return err
			}
			starts, took, err := parseBare(out)
			if err != nil {
				return err
			}
			*bare.call = append(*bare.call, took...)
			*bare.cycle = append(*bare.cycle, cycles(starts)...)
		}

		samples, err := probeRun(ctx, lab, ns, bins["probe-glibc"], "--backend", "glibc", "--names", name, "--count", strconv.Itoa(n), "--rate", "0")
		if err != nil {
			return err
		}
		var ps []float64
		for _, s := range samples {
			probeCall = append(probeCall, float64(s.DurationUS))
			ps = append(ps, float64(s.StartNS)/1000)
		}
		probeCycle = append(probeCycle, cycles(ps)...)
	}
	fmt.Printf("probe overhead, glibc getaddrinfo of %s through the netlab VIP, %d rounds × %d lookups, concurrency 1\n", name, rounds, n)
	fmt.Printf("  %-28s %10s %10s %10s\n", "", "p50 µs", "p90 µs", "p99 µs")
	row := func(label string, v []float64) {
		fmt.Printf("  %-28s %10.0f %10.0f %10.0f\n", label, pct(v, 50), pct(v, 90), pct(v, 99))
	}
	row("C bare loop: call", bareCall)
	row("Go bare loop (cgo): call", goCall)
	row("probe: call (duration_us)", probeCall)
	row("C bare loop: cycle", bareCycle)
	row("Go bare loop (cgo): cycle", goCycle)
	row("probe: cycle (incl. output)", probeCycle)
	over := func(a, b []float64) float64 { return 100 * (pct(a, 50)/pct(b, 50) - 1) }
	fmt.Printf("  p50 overhead of the probe vs the C loop: call %+.1f %%, cycle %+.1f %%\n", over(probeCall, bareCall), over(probeCycle, bareCycle))
	fmt.Printf("  p50 overhead of the probe vs the Go loop of the same Lookup: call %+.1f %%, cycle %+.1f %%\n", over(probeCall, goCall), over(probeCycle, goCycle))
	fmt.Printf("  p50 cost of cgo (Go loop vs C loop): call %+.1f %%\n\n", over(goCall, bareCall))

	fmt.Printf("throughput: --rate 0 for %v, lookups/s (all ok?)\n", dur)
	runs := []struct {
		bin, backend string
		conc         int
	}{
		{"probe-glibc", "glibc", 1}, {"probe-glibc", "glibc", 4}, {"probe-glibc", "glibc", 16},
		{"probe-musl", "musl", 4}, {"probe-glibc", "go", 4}, {"probe-glibc", "raw", 4},
	}
	for _, r := range runs {
		samples, err := probeRun(ctx, lab, ns, bins[r.bin], "--backend", r.backend, "--names", name,
			"--duration", dur.String(), "--rate", "0", "--concurrency", strconv.Itoa(r.conc))
		if err != nil {
			return err
		}
		ok := 0
		for _, s := range samples {
			if s.Result == sample.OK {
				ok++
			}
		}
		fmt.Printf("  %-6s concurrency %-3d %8.0f lookups/s  (%d of %d ok)\n", r.backend, r.conc, float64(len(samples))/dur.Seconds(), ok, len(samples))
	}
	return nil
}

func build(ctx context.Context, dir string) (map[string]string, error) {
	bins := map[string]string{}
	src := filepath.Join(dir, "gai_loop.c")
	if err := os.WriteFile(src, gaiLoop, 0o644); err != nil {
		return nil, err
	}
	steps := []struct {
		out  string
		argv []string
		env  []string
	}{
		{"gai_loop", []string{"gcc", "-O2", "-o", filepath.Join(dir, "gai_loop"), src}, nil},
		{"gobare", []string{"go", "build", "-trimpath", "-o", filepath.Join(dir, "gobare"), "labrun.dev/labrun/bench/probeoverhead/gobare"}, []string{"CGO_ENABLED=1"}},
		{"probe-glibc", []string{"go", "build", "-trimpath", "-o", filepath.Join(dir, "probe-glibc"), "labrun.dev/labrun/cmd/probe"}, []string{"CGO_ENABLED=1"}},
		{"probe-musl", []string{"go", "build", "-trimpath", "-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(dir, "probe-musl"), "labrun.dev/labrun/cmd/probe"}, []string{"CGO_ENABLED=1", "CC=musl-gcc"}},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
		cmd.Env = append(os.Environ(), s.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w: %s", s.out, err, out)
		}
		bins[s.out] = filepath.Join(dir, s.out)
	}
	return bins, nil
}

func parseBare(out []byte) (starts, took []float64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("gai_loop printed %q", sc.Text())
		}
		s, err1 := strconv.ParseFloat(f[0], 64)
		t, err2 := strconv.ParseFloat(f[1], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, err
		}
		starts, took = append(starts, s/1000), append(took, t)
	}
	return starts, took, sc.Err()
}

func probeRun(ctx context.Context, lab *netlab.Lab, ns, bin string, args ...string) ([]*sample.Sample, error) {
	cmd := lab.Command(ctx, ns, append([]string{bin}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", bin, err, stderr.String())
	}
	dec := sample.NewDecoder(&stdout)
	var out []*sample.Sample
	for {
		s, sum, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("probe output has no summary")
		}
		if err != nil {
			return nil, err
		}
		if sum != nil {
			if sum.Lookups != uint64(len(out)) {
				return nil, fmt.Errorf("summary says %d lookups, %d samples", sum.Lookups, len(out))
			}
			return out, nil
		}
		out = append(out, s)
	}
}

// cycles are the gaps between successive starts, in the unit of starts.
func cycles(starts []float64) []float64 {
	var c []float64
	for i := 1; i < len(starts); i++ {
		c = append(c, starts[i]-starts[i-1])
	}
	return c
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}
