package raceemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labrun.dev/labrun/internal/netlab"
	"labrun.dev/labrun/pkg/sample"
)

// jvmClasses compiles the jvm back end's worker (pkg/probe/jvm/LabProbe.java)
// the way the image pipeline does.
var jvmClasses = sync.OnceValues(func() (string, error) {
	for _, tool := range []string{"javac", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("the jvm back end needs %s (Debian: openjdk-17-jdk-headless; make deps installs it)", tool)
		}
	}
	dir, err := buildDir("labrun-jvm-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("javac", "--release", "17", "-d", dir, filepath.Join("..", "probe", "jvm", "LabProbe.java")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("javac LabProbe.java: %w: %s", err, out)
	}
	return dir, nil
})

// jvmProbe runs the glibc probe's jvm back end (cache off, one Java worker)
// in ns; env is added to the probe's (and so its Java workers') environment.
func jvmProbe(t *testing.T, ctx context.Context, lab *netlab.Lab, ns string, env []string, args ...string) []*sample.Sample {
	t.Helper()
	classes, err := jvmClasses()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{probeBinary(t, "glibc"), "--backend", "jvm", "--jvm-classpath", classes, "--jvm-cache", "nocache",
		"--rate", "0", "--concurrency", "1", "--duration", "0"}, args...)
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
	if sum.Lookups != uint64(len(samples)) || !sum.Complete || sum.Variant != "nocache" {
		t.Fatalf("probe summary %+v does not match its %d samples, or names no nocache variant", sum, len(samples))
	}
	return samples
}

// TestIntegrationClaimsJVM: the JVM (InetAddress.getAllByName, cache off)
// under the emulator (profile pre-5.0). A fresh JVM's lookup takes 5 s and the
// emulator drops; single-request-reopen and use-vc reach the JVM through
// glibc and end both; -Djava.net.preferIPv4Stack=true sends only A queries, so
// there is no pair to race. In one long-lived JVM, glibc's fallback to
// single-request after the first timeout (the thread's resolver state, which
// the JVM never re-initialises) spares the later lookups.
func TestIntegrationClaimsJVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := claimsLab(t, ctx, resolvConf(), resolvConf("single-request-reopen"), resolvConf("use-vc"))
	a := labAgent(t, lab, "--profile", "pre-5.0")
	plain := lab.Clients[0]
	const preferIPv4 = "JDK_JAVA_OPTIONS=-Djava.net.preferIPv4Stack=true"

	// A fresh JVM per lookup, as Codacy's short-lived workers started: 3 of
	// them, at least 2 at 5 s (a pair can escape on a loaded machine).
	before := a.counters(t).Dropped
	var fresh []*sample.Sample
	for range 3 {
		fresh = append(fresh, jvmProbe(t, ctx, lab, plain, nil, "--names", fqdnName, "--count", "1")...)
	}
	drops := a.counters(t).Dropped - before
	allOK(t, "jvm none", fresh)
	if n := count5s(durations(fresh)); n < 2 || drops < 2 {
		t.Errorf("jvm, no mitigation, fresh JVMs: %d of %v at 5 s multiples, %d drops; want at least 2 of each", n, durations(fresh), drops)
	}
	t.Logf("jvm, no mitigation, a fresh JVM each: %v; emulator dropped %d", durations(fresh), drops)

	// One JVM, 4 lookups: after its first timeout glibc keeps the thread in
	// single-request mode, so not every lookup pays.
	kept := durations(jvmProbe(t, ctx, lab, plain, nil, "--names", fqdnName, "--count", "4"))
	if n := count5s(kept); n == 0 || n == len(kept) {
		t.Errorf("jvm, one long-lived JVM: %d of %v at 5 s multiples; want some but not all (glibc's single-request fallback)", n, kept)
	}
	t.Logf("jvm, no mitigation, one JVM for 4 lookups: %v", kept)

	for _, m := range []struct {
		name string
		ns   string
		env  []string
	}{
		{"single-request-reopen", lab.Clients[1], nil},
		{"use-vc", lab.Clients[2], nil},
		{"-Djava.net.preferIPv4Stack=true", plain, []string{preferIPv4}},
	} {
		before := a.counters(t).Dropped
		var ss []*sample.Sample
		for range 3 {
			ss = append(ss, jvmProbe(t, ctx, lab, m.ns, m.env, "--names", fqdnName, "--count", "1")...)
		}
		drops := a.counters(t).Dropped - before
		allOK(t, m.name, ss)
		for _, d := range durations(ss) {
			if d >= time.Second {
				t.Errorf("jvm with %s took %v", m.name, d)
			}
		}
		if drops != 0 {
			t.Errorf("jvm with %s: emulator dropped %d, want 0", m.name, drops)
		}
		t.Logf("jvm with %s, a fresh JVM each: %v; emulator dropped %d", m.name, durations(ss), drops)
	}
}
