package images

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mirror is an in-process registry holding, under each published image's
// repository path and tag, a small image built by the test.
type mirror struct {
	host   string             // 127.0.0.1:PORT
	pushed map[string]v1.Hash // published name → digest the mirror serves
}

func newMirror(t *testing.T, list []Published) *mirror {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{host: u.Host, pushed: map[string]v1.Hash{}}
	for _, p := range list {
		img := testImage(t, p.Name)
		dst, err := PullRef(p.Ref, m.host)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatalf("push %s: %v", dst, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		m.pushed[p.Name] = d
	}
	return m
}

// testImage is a one-file linux/amd64 image whose content names it.
func testImage(t *testing.T, content string) v1.Image {
	t.Helper()
	f := t.TempDir() + "/hello"
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	layer, err := filesLayer(map[string]string{"/hello": f})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPullRefRewritesToMirror(t *testing.T) {
	for _, tc := range []struct{ ref, mirror, want string }{
		{"registry.k8s.io/dns/k8s-dns-node-cache:1.22.28", "", "registry.k8s.io/dns/k8s-dns-node-cache:1.22.28"},
		{"registry.k8s.io/dns/k8s-dns-node-cache:1.22.28", "mirror.example:5000", "mirror.example:5000/dns/k8s-dns-node-cache:1.22.28"},
		{"quay.io/calico/node:v3.31.3", "mirror.example", "mirror.example/calico/node:v3.31.3"},
		{"docker.io/weaveworks/weave-kube:2.8.1", "http://10.0.0.1:5000", "10.0.0.1:5000/weaveworks/weave-kube:2.8.1"},
	} {
		got, err := PullRef(tc.ref, tc.mirror)
		if err != nil {
			t.Errorf("PullRef(%q, %q): %v", tc.ref, tc.mirror, err)
			continue
		}
		if got.Name() != tc.want {
			t.Errorf("PullRef(%q, %q) = %s, want %s", tc.ref, tc.mirror, got.Name(), tc.want)
		}
	}
	plain, _ := PullRef("quay.io/calico/node:v3.31.3", "http://10.0.0.1:5000")
	if plain.Scheme() != "http" {
		t.Errorf("http:// mirror: scheme %s, want http", plain.Scheme())
	}
	for _, bad := range []string{"mirror.example/path", "https://mirror.example", "http://"} {
		if _, err := PullRef("quay.io/calico/node:v3.31.3", bad); err == nil {
			t.Errorf("PullRef with mirror %q: no error", bad)
		}
	}
}

// Every published image pulls through a mirror that holds it at the pinned
// digest, and lands in the store as a docker-loadable tarball under the name
// the manifests use.
func TestPullEveryPublishedImageThroughMirror(t *testing.T) {
	list, err := LoadPublished()
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, list)
	// Pin the digests the test's images have: the real ones are checked in
	// TestPullRefusesDigestMismatch.
	for i := range list {
		list[i].Digest = m.pushed[list[i].Name].String()
	}
	cache := t.TempDir()
	got, err := PullAll(context.Background(), list, PullOptions{Cache: cache, Mirror: m.host})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(list) {
		t.Fatalf("pulled %d images, want %d", len(got), len(list))
	}
	for i, rec := range got {
		p := list[i]
		if rec.Source != SourcePulled || rec.Ref != p.Ref || rec.Digest != p.Digest {
			t.Errorf("%s: record %+v, want source pulled, ref %s, digest %s", p.Name, rec, p.Ref, p.Digest)
		}
		if !strings.HasPrefix(rec.From, m.host+"/") {
			t.Errorf("%s: from %s, want the mirror %s", p.Name, rec.From, m.host)
		}
		tag, _ := name.NewTag(p.Ref)
		img, err := tarball.ImageFromPath(rec.Tarball, &tag)
		if err != nil {
			t.Errorf("%s: tarball %s has no image %s: %v", p.Name, rec.Tarball, p.Ref, err)
			continue
		}
		if d, _ := img.Digest(); d.String() != p.Digest {
			t.Errorf("%s: tarball holds %s, want %s", p.Name, d, p.Digest)
		}
		stored, ok := FindStored(cache, p.Ref)
		if !ok || stored.Source != SourcePulled {
			t.Errorf("%s: FindStored = %+v, %v", p.Name, stored, ok)
		}
	}
	all, err := StoredImages(cache)
	if err != nil || len(all) != len(list) {
		t.Errorf("StoredImages: %d records, %v; want %d", len(all), err, len(list))
	}
}

// A mirror serving other content under a pinned tag is refused, and nothing
// is stored.
func TestPullRefusesDigestMismatch(t *testing.T) {
	list, err := LoadPublished()
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := FindPublished(list, "kube-dns", "node-cache")
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, pinned)
	cache := t.TempDir()
	for _, p := range pinned {
		_, err := Pull(context.Background(), p, PullOptions{Cache: cache, Mirror: m.host})
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("%s: err = %v, want ErrDigestMismatch", p.Name, err)
		}
		for _, want := range []string{p.Ref, p.Digest, m.pushed[p.Name].String()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not name %s", p.Name, err, want)
			}
		}
		if _, ok := FindStored(cache, p.Ref); ok {
			t.Errorf("%s: stored after a digest mismatch", p.Name)
		}
	}
}

// Where no registry answers, a pull fails in seconds, naming the image and
// the registry, and says what to do instead. Both registries are on this
// machine: the test sends nothing off it.
func TestPullUnreachableFailsFast(t *testing.T) {
	// A registry that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := Published{Name: "node-cache", Ref: "registry.k8s.io/dns/k8s-dns-node-cache:1.22.28"}
	for _, tc := range []struct {
		mirror  string
		timeout time.Duration
	}{
		{"127.0.0.1:1", 0},                    // refused
		{silent.Addr().String(), time.Second}, // silent: the pull's own bound ends it
	} {
		start := time.Now()
		_, err := Pull(context.Background(), p, PullOptions{Cache: t.TempDir(), Mirror: tc.mirror, Timeout: tc.timeout})
		if err == nil {
			t.Fatalf("mirror %s: pull succeeded", tc.mirror)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("mirror %s: failed after %s, want < 3s", tc.mirror, d)
		}
		for _, want := range []string{p.Ref, tc.mirror, "--mirror", "images import"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mirror %s: error %q does not contain %q", tc.mirror, err, want)
			}
		}
	}
}

func TestPublishedListIsValid(t *testing.T) {
	list, err := LoadPublished()
	if err != nil {
		t.Fatal(err)
	}
	needed := map[string]bool{}
	for _, p := range list {
		for _, a := range p.ForAxis {
			needed[a] = true
		}
	}
	for _, axis := range []string{"podNetwork=calico", "podNetwork=weave", "dns=kube-dns", "mitigation=nodelocaldns", "nodeImage=published"} {
		if !needed[axis] {
			t.Errorf("no published image is listed for %s", axis)
		}
	}
	if _, err := FindPublished(list, "calico-node", "no-such-image"); err == nil || !strings.Contains(err.Error(), "no-such-image") {
		t.Errorf("FindPublished with an unknown name: %v", err)
	}
}

func TestParsePublishedRejectsBadEntries(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"images:\n- name: a\n  ref: quay.io/x/y\n  note: n\n", "want REGISTRY/REPO:TAG"},
		{"images:\n- name: a\n  ref: quay.io/x/y:1\n", "no digest and no note"},
		{"images:\n- name: a\n  ref: quay.io/x/y:1\n  digest: sha256:abc\n", "want sha256:64 hex digits"},
		{"images:\n- name: a\n  ref: quay.io/x/y:1\n  note: n\n- name: a\n  ref: quay.io/x/z:1\n  note: n\n", "repeated"},
		{"images:\n- name: a\n  ref: quay.io/x/y:1\n  note: n\n  extra: 1\n", "extra"},
	} {
		_, err := parsePublished([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePublished(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

// The pin decides, not the tag: a mirror whose tag moved on still gives the
// pinned image, and a mirror holding the digest without the tag serves it.
func TestPullFetchesThePinnedDigest(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	pinnedImg, newerImg := testImage(t, "pinned"), testImage(t, "newer")
	pinned, _ := pinnedImg.Digest()

	moved := Published{Name: "moved", Ref: "registry.k8s.io/dns/moved:1.0", Digest: pinned.String()}
	src, _ := PullRef(moved.Ref, host)
	for _, img := range []v1.Image{pinnedImg, newerImg} { // the tag ends on the newer one
		if err := remote.Write(src, img); err != nil {
			t.Fatal(err)
		}
	}
	untagged := Published{Name: "untagged", Ref: "registry.k8s.io/dns/untagged:1.0", Digest: pinned.String()}
	usrc, _ := PullRef(untagged.Ref, host)
	if err := remote.Write(usrc.Context().Digest(pinned.String()), pinnedImg); err != nil {
		t.Fatal(err)
	}

	cache := t.TempDir()
	for _, p := range []Published{moved, untagged} {
		rec, err := Pull(context.Background(), p, PullOptions{Cache: cache, Mirror: host})
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		tag, _ := name.NewTag(p.Ref)
		img, err := tarball.ImageFromPath(rec.Tarball, &tag)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != pinned {
			t.Errorf("%s: stored %s, want the pinned %s", p.Name, d, pinned)
		}
	}
}

// A registry that answers a digest request with other content is refused.
func TestPullRefusesContentNotMatchingItsDigest(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	good, evil := testImage(t, "good"), testImage(t, "evil")
	goodDigest, _ := good.Digest()
	evilManifest, _ := evil.RawManifest()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/manifests/"+goodDigest.String()) {
			w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
			w.Header().Set("Docker-Content-Digest", goodDigest.String())
			w.Write(evilManifest)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	p := Published{Name: "x", Ref: "registry.k8s.io/dns/x:1.0", Digest: goodDigest.String()}
	src, _ := PullRef(p.Ref, host)
	if err := remote.Write(src, evil); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	_, err := Pull(context.Background(), p, PullOptions{Cache: cache, Mirror: host})
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), `requested digest: "`+goodDigest.String()) {
		t.Fatalf("Pull of tampered content: %v", err)
	}
	if _, ok := FindStored(cache, p.Ref); ok {
		t.Error("tampered image stored")
	}
}
