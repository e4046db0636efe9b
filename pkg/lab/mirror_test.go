package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

// A run with a mirror pulls, before the cells are marked with the host's
// limits, exactly the published images its runnable shapes need and the
// store lacks: here Calico's three for a calico shape, nothing for the
// default one; and then the host no longer stands in the calico cells' way.
func TestPullThroughMirror(t *testing.T) {
	t.Setenv("LABRUN_CACHE", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	published, err := images.LoadPublished()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := empty.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64" // the pull wants the lab's platform
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	var calico []string
	for _, p := range published {
		if !p.Needed("podNetwork=calico") {
			continue
		}
		calico = append(calico, p.Ref)
		dst, err := images.PullRef(p.Ref, "http://"+u.Host)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := scenario.Parse("m.yaml", []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: m}
clusters: [{name: a}, {name: c, podNetwork: calico}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cells := sc.Expand()
	var progress strings.Builder
	if err := pullThroughMirror(context.Background(), "http://"+u.Host, cells, &progress); err != nil {
		t.Fatalf("pull: %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "pulling 3 published image(s)") {
		t.Errorf("progress: %s", progress.String())
	}
	for _, ref := range calico {
		if _, ok := images.FindStored(images.DefaultCache(), ref); !ok {
			t.Errorf("%s not in the store after the pull", ref)
		}
	}
	markHostLimits(cells, hostFacts{kernel: noIPVS, have: func(ref string) bool {
		_, ok := images.FindStored(images.DefaultCache(), ref)
		return ok
	}})
	for _, c := range cells {
		if !c.Runs() {
			t.Errorf("cell %s still not run: %s", c.ID, c.NotRun)
		}
	}
	// Nothing left to pull: a second run says nothing.
	progress.Reset()
	if err := pullThroughMirror(context.Background(), "http://"+u.Host, cells, &progress); err != nil || progress.Len() > 0 {
		t.Errorf("second pull: %v, %q", err, progress.String())
	}
}

// TestRunParallelMirror: with a mirror, --parallel's memory check comes
// before any pull (a refused run pulls nothing); once it passes, the pull
// runs, and the cells whose images the mirror lacks (here an empty one) are
// not run, with the host's reason, their shape no longer counted.
func TestRunParallelMirror(t *testing.T) {
	file := scenarioFile(t, strings.Replace(threeShapesYAML, "  - {name: b}", "  - {name: b, podNetwork: calico}", 1))
	for _, tc := range []struct {
		name    string
		machine machine
		want    string // in Run's error, which wraps ErrTooParallel; "": it runs
	}{
		{"too many for memory: refused before the pull", machine{memAvailable: 5 << 30, cpus: 8},
			"--parallel 3: 3 clusters of 3 to 4 nodes (10 in all) need ≈ 5.9 GiB"},
		{"fits: the pull, then the calico shape not run", bigMachine(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LABRUN_CACHE", t.TempDir())
			var requests atomic.Int64
			reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				reg.ServeHTTP(w, r)
			}))
			defer srv.Close()
			r := newParallelRun(t, t.TempDir(), file, 3, nil)
			r.o.Mirror = srv.URL
			r.o.machine = func() machine { return tc.machine }
			res, err := Run(context.Background(), r.o)
			progress := r.o.Progress.(*bytes.Buffer).String()
			if tc.want != "" {
				if !errors.Is(err, ErrTooParallel) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Run: %v, want %q", err, tc.want)
				}
				if n := requests.Load(); n > 0 || strings.Contains(progress, "images: pulling") {
					t.Errorf("a run refused for memory pulled first (%d requests to the mirror):\n%s", n, progress)
				}
				return
			}
			if res == nil {
				t.Fatalf("Run: %v", err)
			}
			if requests.Load() == 0 || !strings.Contains(progress, "images: pulling 3 published image(s) through mirror") {
				t.Errorf("no pull through the mirror:\n%s", progress)
			}
			if !strings.Contains(progress, "4 to run on 2 cluster(s), 2 at once") {
				t.Errorf("the calico shape still counted:\n%s", progress)
			}
			for id, st := range statuses(t, res.Run, fileCells(t, file)) {
				calico := strings.HasPrefix(id, "b_")
				if calico != (st.State == results.NotRun) || calico && !strings.Contains(st.Reason, "podNetwork calico: images") {
					t.Errorf("%s: %s %q", id, st.State, st.Reason)
				}
			}
		})
	}
}

// scenarioFile writes a scenario into a file of the test's and returns its path.
func scenarioFile(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// fileCells are the cells of a scenario file.
func fileCells(t *testing.T, file string) []scenario.Cell {
	t.Helper()
	sc, err := scenario.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sc.Expand()
}
