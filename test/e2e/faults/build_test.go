//go:build e2e

package faults

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

// TestE2EFaultImageBuild interrupts an image build from an empty cache
// while debootstrap makes the Debian base, and while apt-get extends it into
// a root file system in a chroot: labrun exits 130, and nothing of the build
// is left running, mounted or looking complete.
func TestE2EFaultImageBuild(t *testing.T) {
	for _, tc := range []struct {
		name, marker string
		after        time.Duration
	}{
		// 20 s into debootstrap it is downloading or unpacking packages,
		// with /proc mounted in its target.
		{"debootstrap", "rootfs/base: building", 20 * time.Second},
		// 2 s into the tools extension the base is unpacked and apt-get
		// runs in the chroot, with /proc mounted there.
		{"apt-get in a chroot", "rootfs/tools: building", 2 * time.Second},
	} {
		f := features.New("SIGINT during the image build: "+tc.name).
			Assess("the build stops and leaves no process, mount, container or partial artifact", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				before := readHost(ctx, t, "labrun-ftbuild")
				cache := t.TempDir()
				p := runLabrun(ctx, t, 10*time.Minute, &fault{marker: tc.marker, after: tc.after, signal: syscall.SIGINT},
					"images", "build", "--cache", cache)
				t.Logf("labrun images build exited %d, %s after SIGINT", p.code, p.cleanupTime())
				if p.code != 130 {
					t.Errorf("exit code %d, want 130", p.code)
				}
				// Nothing runs in the cache any more (debootstrap, dpkg, apt, go).
				out, _ := exec.CommandContext(ctx, "pgrep", "-af", cache).Output()
				if procs := strings.TrimSpace(string(out)); procs != "" {
					t.Errorf("processes still working in %s:\n%s", cache, procs)
				}
				mounts, err := os.ReadFile("/proc/self/mountinfo")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(mounts), cache) {
					t.Errorf("mounts left under %s:\n%s", cache, grepLines(string(mounts), cache))
				}
				// Build folders are removed; every artifact kept is complete.
				if left, _ := filepath.Glob(filepath.Join(cache, "tmp", "*")); len(left) > 0 {
					t.Errorf("build folders left: %v", left)
				}
				arts, _ := filepath.Glob(filepath.Join(cache, "artifacts", "*", "*", "*"))
				for _, a := range arts {
					if _, err := os.Stat(filepath.Join(a, ".complete")); err != nil {
						t.Errorf("artifact %s is kept without .complete", a)
					}
				}
				checkNothingLeft(ctx, t, "labrun-ftbuild", before)
				return ctx
			}).Feature()
		testenv.Test(t, f)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
