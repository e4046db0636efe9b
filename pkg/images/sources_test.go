package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An Always step runs unless its sources are as at a build the cache holds;
// its key stays the hash of its output, so an identical output rebuilt from
// changed sources leaves its dependents' keys alone.
func TestRunnerReusesAlwaysStepsBySources(t *testing.T) {
	cache := t.TempDir()
	plan := func(sources, output string, builds *[]string) (*Step, *Step) {
		own := &Step{Name: "own", Always: true,
			sources: func(context.Context) (string, error) { return sources, nil },
			build: func(ctx context.Context, j *job) error {
				*builds = append(*builds, "own")
				return os.WriteFile(j.File("bin"), []byte(output), 0o644)
			}}
		return own, counting("image", nil, builds, own)
	}
	cases := []struct {
		name, sources, output string
		want                  []string
	}{
		{"cold", strings.Repeat("a", 64), "v1", []string{"own", "image"}},
		{"unchanged", strings.Repeat("a", 64), "v1", nil},
		{"changed, same output", strings.Repeat("b", 64), "v1", []string{"own"}},
		{"changed, new output", strings.Repeat("c", 64), "v2", []string{"own", "image"}},
		{"back to the first", strings.Repeat("a", 64), "v1", nil},
	}
	for _, c := range cases {
		var builds []string
		own, image := plan(c.sources, c.output, &builds)
		if err := newRunner(t, cache).Run(context.Background(), image); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := sorted(builds), sorted(c.want); got != want {
			t.Errorf("%s: built %s, want %s", c.name, got, want)
		}
		if b, err := os.ReadFile(own.File("bin")); err != nil || string(b) != c.output {
			t.Errorf("%s: own's output %q (%v), want %q", c.name, b, err, c.output)
		}
	}

	// The same sources under other inputs (build flags) build again (and
	// what depends on it: its key hashes its inputs too).
	var builds []string
	own, image := plan(strings.Repeat("a", 64), "v1", &builds)
	own.Inputs = []string{"-ldflags", "-s"}
	if err := newRunner(t, cache).Run(context.Background(), image); err != nil || sorted(builds) != sorted([]string{"own", "image"}) {
		t.Errorf("changed inputs: built %v, err %v; want own and image rebuilt", builds, err)
	}

	// Sources that cannot be told build as before.
	builds = nil
	own, _ = plan("", "v1", &builds)
	own.sources = func(context.Context) (string, error) { return "", os.ErrNotExist }
	if err := newRunner(t, cache).Run(context.Background(), own); err != nil || len(builds) != 1 {
		t.Errorf("unknown sources: built %v, err %v; want one build", builds, err)
	}
}

// goSources changes with what the binary is built from, and only with that.
func TestGoSources(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	repo := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("cmd/x/main.go", "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { lib.F() }\n")
	write("lib/lib.go", "package lib\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string\n\nfunc F() { println(data) }\n")
	write("lib/data.txt", "one")
	write("other/other.go", "package other\n")
	ctx := context.Background()
	fp := func(env []string) string {
		t.Helper()
		s, err := goSources(ctx, repo, "x", env)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	nocgo := []string{"CGO_ENABLED=0"}
	first := fp(nocgo)
	if again := fp(nocgo); again != first {
		t.Fatalf("two fingerprints of the same sources differ")
	}
	unchanged := []struct {
		name  string
		apply func()
	}{
		{"a test file", func() { write("lib/lib_test.go", "package lib\n") }},
		{"a package the binary does not import", func() { write("other/other.go", "package other\n\nvar X = 1\n") }},
	}
	for _, c := range unchanged {
		c.apply()
		if got := fp(nocgo); got != first {
			t.Errorf("%s changed the fingerprint", c.name)
		}
	}
	_, gccErr := exec.LookPath("gcc")
	changed := []struct {
		name  string
		apply func()
		env   []string
	}{
		{"cgo on", func() {}, []string{"CGO_ENABLED=1"}},
		{"an imported package's file", func() {
			write("lib/lib.go", "package lib\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string\n\nfunc F() { println(data, 2) }\n")
		}, nocgo},
		{"an embedded file", func() { write("lib/data.txt", "two") }, nocgo},
		{"the main package", func() { write("cmd/x/more.go", "package main\n") }, nocgo},
		{"go.mod's go line", func() { write("go.mod", "module example.com/m\n\ngo 1.23\n") }, nocgo},
	}
	prev := first
	for _, c := range changed {
		if c.env[0] != nocgo[0] && gccErr != nil {
			t.Logf("%s: skipped, no gcc: %v", c.name, gccErr)
			continue
		}
		c.apply()
		if got := fp(c.env); got == prev {
			t.Errorf("%s left the fingerprint as it was", c.name)
		} else if c.env[0] == nocgo[0] {
			prev = got
		}
	}
}
