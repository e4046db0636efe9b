package probe_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/internal/netlab"
	"labrun.dev/labrun/pkg/analyze/capture"
	"labrun.dev/labrun/pkg/probe"
	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/upstream"
)

// The integration tests run the real probe binaries, built the way the image
// pipeline builds them, in client namespaces of a netlab whose resolv.conf
// points at the VIP, DNAT'd to two lab upstream servers.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// probeBinaries builds the glibc and musl probes once per test binary.
func probeBinaries(t testing.TB) (glibc, musl string) {
	t.Helper()
	buildOnce.Do(func() {
		var missing []string
		for _, tool := range []string{"gcc", "musl-gcc"} {
			if _, err := exec.LookPath(tool); err != nil {
				missing = append(missing, tool)
			}
		}
		if len(missing) > 0 {
			buildErr = fmt.Errorf("building the probes needs %s (Debian: gcc, musl-tools)", strings.Join(missing, ", "))
			return
		}
		binDir, buildErr = os.MkdirTemp("", "labrun-probe-")
		if buildErr != nil {
			return
		}
		builds := []struct {
			out string
			env []string
			ld  []string
		}{
			{"probe-glibc", []string{"CGO_ENABLED=1"}, nil},
			{"probe-musl", []string{"CGO_ENABLED=1", "CC=musl-gcc"}, []string{"-ldflags", "-linkmode external -extldflags -static"}},
		}
		for _, b := range builds {
			args := append([]string{"build", "-trimpath", "-o", filepath.Join(binDir, b.out)}, b.ld...)
			cmd := exec.Command("go", append(args, "labrun.dev/labrun/cmd/probe")...)
			cmd.Env = append(os.Environ(), b.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w: %s", b.out, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "probe-glibc"), filepath.Join(binDir, "probe-musl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs root, network namespaces, gcc, musl-gcc, tcpdump, python3-grpcio; skipped with -short")
	}
	if err := netlab.Require(); err != nil {
		t.Fatalf("%v", err)
	}
}

// grpcPython finds a python3 that imports grpc: the one on PATH, else
// Debian's (a pyenv or venv python on PATH usually lacks python3-grpcio).
func grpcPython(t *testing.T) string {
	t.Helper()
	var errs []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		out, err := exec.Command(py, "-c", "import grpc").CombinedOutput()
		if err == nil {
			return py
		}
		errs = append(errs, fmt.Sprintf("%s: %v: %s", py, err, strings.TrimSpace(string(out))))
	}
	t.Fatalf("the gRPC back ends need python3 with grpcio (Debian: python3-grpcio):\n%s", strings.Join(errs, "\n"))
	return ""
}

// labUpstream answers loopback addresses, so a gRPC channel to any name of
// the zone reaches the gRPC server listening in the client namespace itself.
func labUpstream() upstream.Config {
	cfg := upstream.Defaults()
	cfg.A, cfg.AAAA = net.IPv4(127, 0, 0, 1), net.ParseIP("::1")
	return cfg
}

// runProbe runs the probe in ns and decodes its output.
func runProbe(t *testing.T, ctx context.Context, lab *netlab.Lab, ns, bin string, args ...string) ([]*sample.Sample, *sample.Summary) {
	t.Helper()
	cmd := lab.Command(ctx, ns, append([]string{bin}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", bin, strings.Join(args, " "), err, stderr.String())
	}
	samples, sum, err := sample.ReadAll(&stdout)
	if err != nil {
		t.Fatalf("%s %s: %v:\n%s", bin, strings.Join(args, " "), err, stdout.String())
	}
	return samples, sum
}

// TestIntegrationBackendsResolve: every back end resolves a name of the
// outside zone (walking the ndots:5 search list) and gets NXDOMAIN for a name
// that does not exist, through a real resolv.conf in a client namespace.
func TestIntegrationBackendsResolve(t *testing.T) {
	integration(t)
	glibc, musl := probeBinaries(t)
	python := grpcPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab := netlab.ForTest(t, ctx, netlab.Config{
		Clients:  []string{netlab.DefaultResolvConf + "options timeout:1 attempts:2\n"},
		Upstream: labUpstream(),
	})
	ns := lab.Clients[0]
	srv := lab.Command(ctx, ns, probe.GRPCServerArgv(python, "[::]:50051")...)
	if err := probe.StartGRPCServer(srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })

	tests := []struct {
		bin, backend string
		extra        []string
		addrs        int // answers expected for the outside name (gRPC cannot tell)
	}{
		{glibc, probe.Glibc, nil, 2},
		{musl, probe.Musl, nil, 2},
		{glibc, probe.Go, nil, 2},
		{musl, probe.Go, nil, 2},
		{glibc, probe.Raw, []string{"--raw-socket", probe.SameSocket}, 2},
		{glibc, probe.Raw, []string{"--raw-socket", probe.SocketPerQuery}, 2},
		{glibc, probe.GRPCAres, nil, 0},
		{glibc, probe.GRPCNative, nil, 0},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.bin)+"/"+tt.backend+strings.Join(tt.extra, ""), func(t *testing.T) {
			args := append([]string{"--backend", tt.backend, "--names", "external:api.lab.example,short:nope.invalid",
				"--count", "2", "--rate", "0", "--pod", "p", "--node", "n", "--python", python}, tt.extra...)
			samples, sum := runProbe(t, ctx, lab, ns, tt.bin, args...)
			if len(samples) != 2 || sum.Lookups != 2 || !sum.Complete {
				t.Fatalf("%d samples, summary %+v", len(samples), sum)
			}
			ok, nx := samples[0], samples[1]
			t.Logf("%s: %s %d addresses in %d µs; %s: %s (%s)", ok.Name, ok.Result, ok.Answers, ok.DurationUS, nx.Name, nx.Result, nx.ErrorText)
			if ok.Result != sample.OK || ok.Answers != tt.addrs || ok.Resolver != tt.backend || ok.Pod != "p" {
				t.Errorf("api.lab.example: %+v, want ok with %d addresses", ok, tt.addrs)
			}
			if nx.Result != sample.NXDomain {
				t.Errorf("nope.invalid: %+v, want nxdomain", nx)
			}
			if ok.DurationUS <= 0 || ok.DurationUS > 1_000_000 {
				t.Errorf("lookup took %d µs: want a fast lookup on a quiet lab", ok.DurationUS)
			}
		})
	}
}

// TestIntegrationCaptureSourcePorts: a capture in the client namespace shows
// glibc's A and AAAA leaving from one source port without options and from
// two ports with single-request-reopen; musl, and gRPC with c-ares, send both
// from one port either way (they ignore the option); gRPC with the native
// resolver follows glibc.
func TestIntegrationCaptureSourcePorts(t *testing.T) {
	integration(t)
	glibc, musl := probeBinaries(t)
	python := grpcPython(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("the capture test needs tcpdump")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	plain := "nameserver " + netlab.VIP + "\n"
	lab := netlab.ForTest(t, ctx, netlab.Config{
		Clients:  []string{plain, plain + "options single-request-reopen\n"},
		Upstream: labUpstream(),
	})
	for _, ns := range lab.Clients {
		srv := lab.Command(ctx, ns, probe.GRPCServerArgv(python, "[::]:50051")...)
		if err := probe.StartGRPCServer(srv); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	}
	const lookups = 5
	tests := []struct {
		name, bin, backend string
		client             int
		same               uint64 // A+AAAA pairs from one port
		different          uint64 // A+AAAA pairs from two ports
	}{
		{"glibc without options", glibc, probe.Glibc, 0, lookups, 0},
		{"glibc with single-request-reopen", glibc, probe.Glibc, 1, 0, lookups},
		{"musl without options", musl, probe.Musl, 0, lookups, 0},
		{"musl with single-request-reopen", musl, probe.Musl, 1, lookups, 0},
		{"grpc-ares with single-request-reopen", glibc, probe.GRPCAres, 1, lookups, 0},
		{"grpc-native with single-request-reopen", glibc, probe.GRPCNative, 1, 0, lookups},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := lab.Clients[tt.client]
			file := filepath.Join(t.TempDir(), fmt.Sprintf("c%d.pcap", i))
			c, err := lab.Capture(ctx, ns, "eth0", file, "udp", "port", "53")
			if err != nil {
				t.Fatal(err)
			}
			_, sum := runProbe(t, ctx, lab, ns, tt.bin, "--backend", tt.backend, "--names", "fqdn:api.lab.example",
				"--count", fmt.Sprint(lookups), "--rate", "0", "--python", python)
			time.Sleep(100 * time.Millisecond) // let tcpdump write the last answers
			stats, err := c.Stop()
			if err != nil {
				t.Fatal(err)
			}
			if sum.ByResult[sample.OK] != lookups {
				t.Fatalf("summary %+v: want %d ok lookups", sum, lookups)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// glibc with single-request-reopen sends the AAAA after the A's
			// answer, from a new socket: a round trip apart, not microseconds.
			rep, err := capture.Analyze(f, capture.Options{PairWindow: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = capture.WriteText(&text, rep)
			if rep.SamePortPairs != tt.same || rep.DifferentPortPairs != tt.different || rep.Unanswered != 0 || len(rep.Resends) != 0 {
				t.Fatalf("want %d same-port and %d different-port pairs, nothing lost; got:\n%s\ntcpdump: %v",
					tt.same, tt.different, text.String(), stats)
			}
			t.Logf("%d queries, %d answers, pairs: %d same port, %d different ports", rep.Queries, rep.Answers, rep.SamePortPairs, rep.DifferentPortPairs)
		})
	}
}

// TestIntegrationTimeout: when the upstream answers later than resolv.conf's
// timeout, every back end reports a timeout (glibc and musl: EAI_AGAIN after
// the timeout, not an error).
func TestIntegrationTimeout(t *testing.T) {
	integration(t)
	glibc, musl := probeBinaries(t)
	python := grpcPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel) // not defer: the parallel subtests run after this function returns
	slow := labUpstream()
	slow.Latency = 2500 * time.Millisecond
	lab := netlab.ForTest(t, ctx, netlab.Config{
		Clients:  []string{"nameserver " + netlab.VIP + "\noptions timeout:1 attempts:1\n"},
		Upstream: slow,
	})
	ns := lab.Clients[0]
	tests := []struct{ bin, backend string }{
		{glibc, probe.Glibc}, {musl, probe.Musl}, {glibc, probe.Go}, {glibc, probe.Raw}, {glibc, probe.GRPCAres}, {glibc, probe.GRPCNative},
	}
	for _, tt := range tests {
		t.Run(tt.backend, func(t *testing.T) {
			t.Parallel()
			samples, _ := runProbe(t, ctx, lab, ns, tt.bin, "--backend", tt.backend, "--names", "fqdn:slow.lab.example",
				"--count", "1", "--grpc-deadline", "2s", "--python", python)
			s := samples[0]
			t.Logf("%s after %d µs: %s", s.Result, s.DurationUS, s.ErrorText)
			if s.Result != sample.Timeout {
				t.Errorf("result %s (%s), want timeout", s.Result, s.ErrorText)
			}
			if s.DurationUS < 900_000 || s.DurationUS > 2_400_000 {
				t.Errorf("took %d µs: want about the 1 s timeout (2 s deadline for gRPC), before the 2.5 s answer", s.DurationUS)
			}
		})
	}
}
