package images

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var buildsMu sync.Mutex

// counting returns a file step that records each build in *builds.
func counting(name string, inputs []string, builds *[]string, deps ...*Step) *Step {
	return &Step{Name: name, Inputs: inputs, Deps: deps, build: func(ctx context.Context, j *job) error {
		buildsMu.Lock()
		*builds = append(*builds, name)
		buildsMu.Unlock()
		return os.WriteFile(j.File("out"), []byte(name+strings.Join(inputs, ",")), 0o644)
	}}
}

func newRunner(t *testing.T, cache string) *Runner {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(cache, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Runner{Cache: cache, Progress: io.Discard, Docker: &Docker{}, Parallel: 2}
}

func TestRunnerReusesAndRebuildsOnlyDependents(t *testing.T) {
	cache := t.TempDir()
	plan := func(kubeVersion string, builds *[]string) []*Step {
		base := counting("base", []string{"bookworm"}, builds)
		kube := counting("kube", []string{kubeVersion}, builds)
		other := counting("other", []string{"v1"}, builds, base)
		node := counting("node", nil, builds, base, kube)
		return []*Step{node, other}
	}
	cases := []struct {
		name, kube string
		want       []string // steps built, in any order
	}{
		{"cold", "v1.36.1", []string{"base", "kube", "node", "other"}},
		{"warm", "v1.36.1", nil},
		{"one version changed", "v1.37.2", []string{"kube", "node"}},
		{"back to the first", "v1.36.1", nil},
	}
	for _, c := range cases {
		var builds []string
		if err := newRunner(t, cache).Run(context.Background(), plan(c.kube, &builds)...); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := sorted(builds), sorted(c.want); got != want {
			t.Errorf("%s: built %s, want %s", c.name, got, want)
		}
	}
}

func sorted(s []string) string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return strings.Join(c, ",")
}

func TestRunnerStartsStepsInPlanOrder(t *testing.T) {
	// base, then its extension (ready only once base is made), then two
	// independent steps: one at a time, the extension must not wait behind
	// the independent ones that were ready first.
	for _, parallel := range []int{1, 2} {
		var builds []string
		base := counting("base", nil, &builds)
		ext := counting("ext", nil, &builds, base)
		g1 := counting("g1", nil, &builds)
		g2 := counting("g2", nil, &builds)
		r := newRunner(t, t.TempDir())
		r.Parallel = parallel
		if err := r.Run(context.Background(), ext, g1, g2); err != nil {
			t.Fatal(err)
		}
		if parallel == 1 {
			if got := strings.Join(builds, ","); got != "base,ext,g1,g2" {
				t.Errorf("one at a time: built %s, want base,ext,g1,g2", got)
			}
		} else if got := sorted(builds); got != "base,ext,g1,g2" {
			t.Errorf("two at a time: built %s, want each of base,ext,g1,g2 once", got)
		}
	}
}

func TestRunnerFailedStepLeavesNothingComplete(t *testing.T) {
	cache := t.TempDir()
	boom := errors.New("boom")
	var builds []string
	failing := &Step{Name: "half", Inputs: []string{"x"}, build: func(ctx context.Context, j *job) error {
		os.WriteFile(j.File("partial"), []byte("half-written"), 0o644)
		return boom
	}}
	after := counting("after", nil, &builds, failing)
	err := newRunner(t, cache).Run(context.Background(), after)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if len(builds) != 0 {
		t.Errorf("a step after the failure ran: %v", builds)
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "artifacts", "*", "*", ".complete"))
	if len(matches) != 0 {
		t.Errorf("a failed build left complete artifacts: %v", matches)
	}
	tmp, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	if len(tmp) != 0 {
		t.Errorf("a failed build left its temporary folder: %d entries", len(tmp))
	}
	// The next run builds it again rather than reusing the half-made output.
	var again []string
	failing.build = func(ctx context.Context, j *job) error {
		again = append(again, "half")
		return os.WriteFile(j.File("out"), []byte("whole"), 0o644)
	}
	if err := newRunner(t, cache).Run(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 {
		t.Errorf("the failed step was not rebuilt: %v", again)
	}
}

func TestRunnerInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Step{Name: "slow", build: func(ctx context.Context, j *job) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}
	err := newRunner(t, t.TempDir()).Run(ctx, s)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFailedCommandNamesCommandOutputAndLog(t *testing.T) {
	cache := t.TempDir()
	s := &Step{Name: "cmd", build: func(ctx context.Context, j *job) error {
		return j.run(ctx, Cmd{Args: []string{"sh", "-c", "echo something broke >&2; exit 3"}})
	}}
	err := newRunner(t, cache).Run(context.Background(), s)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`sh -c echo something broke >&2; exit 3`, "something broke", filepath.Join(cache, "logs", "cmd.log")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestVersions(t *testing.T) {
	v, err := LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Kube(v.DefaultKubernetes()); err != nil {
		t.Fatal(err)
	}
	_, err = v.Kube("v1.20.0")
	if err == nil || !strings.Contains(err.Error(), "supported: "+strings.Join(v.Supported(), ", ")) {
		t.Errorf("unsupported version error = %v, want it to list the supported versions", err)
	}
	k, _ := v.Kube("v1.36.1")
	if k.EtcdTag() != "3.6.8-0" || k.Minor() != "36" {
		t.Errorf("EtcdTag %q Minor %q", k.EtcdTag(), k.Minor())
	}
}
