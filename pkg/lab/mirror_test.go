package lab

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// A run with a mirror pulls, before the host is probed, exactly the
// published images its runnable shapes need and the store lacks: here
// Calico's three for a calico shape, nothing for the default one; and then
// the host no longer stands in the calico cells' way.
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
