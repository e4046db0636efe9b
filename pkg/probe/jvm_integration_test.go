package probe_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/internal/netlab"
	"labrun.dev/labrun/pkg/analyze/capture"
	"labrun.dev/labrun/pkg/probe"
	"labrun.dev/labrun/pkg/sample"
)

// jvmClassDir compiles LabProbe.java once per test binary, as the image
// pipeline does (javac --release 17 of Debian's openjdk-17-jdk-headless).
var jvmClassDir = sync.OnceValues(func() (string, error) {
	for _, tool := range []string{"javac", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("the jvm back end needs %s (Debian: openjdk-17-jdk-headless; make deps installs it)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "labrun-jvm-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("javac", "--release", "17", "-d", dir, filepath.Join("jvm", "LabProbe.java")).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("javac LabProbe.java: %w: %s", err, out)
	}
	return dir, nil
})

// preferIPv4 is the launcher's environment that sets
// -Djava.net.preferIPv4Stack=true in every Java worker the probe starts.
const preferIPv4 = "JDK_JAVA_OPTIONS=-Djava.net.preferIPv4Stack=true"

// runJVM runs the glibc probe's jvm back end in ns, with extra environment.
func runJVM(t *testing.T, ctx context.Context, lab *netlab.Lab, ns, bin, classes string, env []string, args ...string) ([]*sample.Sample, *sample.Summary) {
	t.Helper()
	argv := append([]string{bin, "--backend", probe.JVM, "--jvm-classpath", classes, "--concurrency", "1", "--rate", "0",
		"--pod", "p", "--node", "n"}, args...)
	cmd := lab.Command(ctx, ns, argv...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
	}
	samples, sum, err := sample.ReadAll(&stdout)
	if err != nil {
		t.Fatalf("%s: %v:\n%s", strings.Join(argv, " "), err, stdout.String())
	}
	return samples, sum
}

// TestIntegrationJVM: the jvm back end, both cache variants, in a client
// namespace: an outside name resolves through the ndots:5 search list, a name
// that does not exist is NXDOMAIN (UnknownHostException), the summary names
// the variant; and a capture shows what the JVM puts on the wire: with
// -Djava.net.preferIPv4Stack unset, A and AAAA from one source port (glibc's
// getaddrinfo with AF_UNSPEC), from two ports with single-request-reopen (the
// option reaches the JVM through glibc); with it set, only A queries; with
// the JVM's cache, one query pair for every lookup of a name.
func TestIntegrationJVM(t *testing.T) {
	integration(t)
	glibc, _ := probeBinaries(t)
	classes, err := jvmClassDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(classes) })
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("the capture part needs tcpdump")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	plain := "nameserver " + netlab.VIP + "\n"
	lab := netlab.ForTest(t, ctx, netlab.Config{
		Clients:  []string{netlab.DefaultResolvConf + "options timeout:1 attempts:2\n", plain, plain + "options single-request-reopen\n"},
		Upstream: labUpstream(),
	})

	for _, v := range []struct {
		cache string
		env   []string
		addrs int
	}{
		{probe.JVMCacheDefaults, nil, 2},
		{probe.JVMCacheOff, nil, 2},
		// Inet4AddressImpl: getaddrinfo with AF_INET, the ::1 answer never asked for.
		{probe.JVMCacheOff, []string{preferIPv4}, 1},
	} {
		t.Run("resolve/"+v.cache+strings.Join(v.env, ""), func(t *testing.T) {
			samples, sum := runJVM(t, ctx, lab, lab.Clients[0], glibc, classes, v.env, "--jvm-cache", v.cache,
				"--names", "external:api.lab.example,short:nope.invalid", "--count", "2")
			if len(samples) != 2 || sum.Lookups != 2 || !sum.Complete || sum.Variant != v.cache || sum.Resolver != probe.JVM {
				t.Fatalf("%d samples, summary %+v", len(samples), sum)
			}
			ok, nx := samples[0], samples[1]
			t.Logf("%s: %s %d addresses in %d µs; %s: %s (%s)", ok.Name, ok.Result, ok.Answers, ok.DurationUS, nx.Name, nx.Result, nx.ErrorText)
			if ok.Result != sample.OK || ok.Answers != v.addrs {
				t.Errorf("api.lab.example: %+v, want ok with %d addresses", ok, v.addrs)
			}
			if nx.Result != sample.NXDomain || !strings.Contains(nx.ErrorText, "java.net.UnknownHostException") {
				t.Errorf("nope.invalid: %+v, want nxdomain with UnknownHostException", nx)
			}
			if ok.DurationUS <= 0 || ok.DurationUS > 1_000_000 {
				t.Errorf("lookup took %d µs: want a fast lookup on a quiet lab", ok.DurationUS)
			}
		})
	}

	const lookups = 5
	tests := []struct {
		name      string
		client    int
		cache     string
		env       []string
		queries   uint64 // query packets on the wire
		same      uint64 // A+AAAA pairs from one port
		different uint64 // A+AAAA pairs from two ports
	}{
		{"nocache", 1, probe.JVMCacheOff, nil, 2 * lookups, lookups, 0},
		{"nocache with single-request-reopen", 2, probe.JVMCacheOff, nil, 2 * lookups, 0, lookups},
		{"nocache preferIPv4Stack", 1, probe.JVMCacheOff, []string{preferIPv4}, lookups, 0, 0},
		{"nocache preferIPv4Stack with single-request-reopen", 2, probe.JVMCacheOff, []string{preferIPv4}, lookups, 0, 0},
		{"defaults (cache)", 1, probe.JVMCacheDefaults, nil, 2, 1, 0},
		{"defaults (cache) preferIPv4Stack", 1, probe.JVMCacheDefaults, []string{preferIPv4}, 1, 0, 0},
	}
	for i, tt := range tests {
		t.Run("wire/"+tt.name, func(t *testing.T) {
			ns := lab.Clients[tt.client]
			file := filepath.Join(t.TempDir(), fmt.Sprintf("j%d.pcap", i))
			c, err := lab.Capture(ctx, ns, "eth0", file, "udp", "port", "53")
			if err != nil {
				t.Fatal(err)
			}
			_, sum := runJVM(t, ctx, lab, ns, glibc, classes, tt.env, "--jvm-cache", tt.cache,
				"--names", "fqdn:api.lab.example", "--count", fmt.Sprint(lookups))
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
			// With single-request-reopen the AAAA leaves after the A's
			// answer, from a new socket; a first answer on a busy 2-core
			// machine has taken 95 ms.
			rep, err := capture.Analyze(f, capture.Options{PairWindow: 250 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = capture.WriteText(&text, rep)
			wire, _ := exec.CommandContext(ctx, "tcpdump", "-nr", file).CombinedOutput()
			t.Logf("on the wire:\n%s", wire)
			if rep.Queries != tt.queries || rep.SamePortPairs != tt.same || rep.DifferentPortPairs != tt.different || rep.Unanswered != 0 {
				t.Fatalf("want %d queries, %d same-port and %d different-port pairs, nothing lost; got:\n%s\ntcpdump: %v",
					tt.queries, tt.same, tt.different, text.String(), stats)
			}
		})
	}
}

// BenchmarkJVMAgainstGlibc measures, in a client namespace of a netlab (no
// emulator), what the JVM adds to a lookup over glibc's getaddrinfo called
// from Go: lookups per second of one worker and the median lookup, for
// glibc, jvm with its cache off, and jvm with its cache at its defaults.
// A benchmark, not a timed test: go test -run '^$' -bench JVMAgainstGlibc
// -benchtime 1x ./pkg/probe/ (root).
func BenchmarkJVMAgainstGlibc(b *testing.B) {
	if err := netlab.Require(); err != nil {
		b.Fatal(err)
	}
	glibc, _ := probeBinaries(b)
	classes, err := jvmClassDir()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(classes) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lab := netlab.ForTest(b, ctx, netlab.Config{Clients: []string{"nameserver " + netlab.VIP + "\n"}, Upstream: labUpstream()})
	const lookups = 2000
	for _, bb := range []struct{ name, backend, cache string }{
		{"glibc", probe.Glibc, ""}, {"jvm-nocache", probe.JVM, probe.JVMCacheOff}, {"jvm-defaults", probe.JVM, probe.JVMCacheDefaults},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for range b.N {
				argv := []string{glibc, "--backend", bb.backend, "--names", "fqdn:api.lab.example", "--count", fmt.Sprint(lookups),
					"--rate", "0", "--concurrency", "1", "--jvm-classpath", classes}
				if bb.cache != "" {
					argv = append(argv, "--jvm-cache", bb.cache)
				}
				var stdout, stderr bytes.Buffer
				cmd := lab.Command(ctx, lab.Clients[0], argv...)
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
				}
				samples, _, err := sample.ReadAll(&stdout)
				if err != nil || len(samples) != lookups {
					b.Fatalf("%d samples: %v", len(samples), err)
				}
				durs := make([]int64, len(samples))
				for i, s := range samples {
					if s.Result != sample.OK {
						b.Fatalf("lookup %d: %s %s", i, s.Result, s.ErrorText)
					}
					durs[i] = s.DurationUS
				}
				slices.Sort(durs)
				last := samples[len(samples)-1]
				wall := time.Duration(last.StartNS-samples[0].StartNS) + time.Duration(last.DurationUS)*time.Microsecond
				b.ReportMetric(float64(lookups)/wall.Seconds(), "lookups/s")
				b.ReportMetric(float64(durs[len(durs)/2]), "median-µs")
				b.ReportMetric(float64(durs[len(durs)*99/100]), "p99-µs")
			}
		})
	}
}
