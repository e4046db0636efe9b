package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// manifestServer serves *body at /m.yaml and counts requests.
func manifestServer(t *testing.T, body *[]byte) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != "/m.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(*body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/m.yaml", &n
}

// The embedded pins: Calico's is the verified digest of the tag's blob,
// Weave's is trust on first use (its release asset was not seen here).
func TestLoadManifestsPins(t *testing.T) {
	all, err := LoadManifests()
	if err != nil {
		t.Fatal(err)
	}
	calico, err := FindManifest(all, "calico")
	if err != nil {
		t.Fatal(err)
	}
	if calico.Version != "v3.31.3" ||
		calico.URL != "https://raw.githubusercontent.com/projectcalico/calico/v3.31.3/manifests/calico.yaml" ||
		calico.SHA256 != "4b2e4053abc87427c214128f0e1b065d2f0dbadeb6be4ca3bdc6754e33af0ca7" || !calico.Pinned() {
		t.Errorf("calico: %+v", calico)
	}
	weave, err := FindManifest(all, "weave")
	if err != nil {
		t.Fatal(err)
	}
	if weave.Version != "2.8.1" || weave.Pinned() || !strings.Contains(weave.Note, "trust on first use") ||
		weave.URL != "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s-1.11.yaml" {
		t.Errorf("weave: %+v", weave)
	}
	// Each manifest's images are published images the lab knows.
	for _, m := range all {
		if len(m.ForAxis) == 0 {
			t.Errorf("%s: no forAxis", m.Name)
		}
	}
	if _, err := FindManifest(all, "flannel"); err == nil || !strings.Contains(err.Error(), "known: calico, weave") {
		t.Errorf("unknown name: %v", err)
	}
}

func TestParseManifestsRefusesBadEntries(t *testing.T) {
	_, err := parseManifests([]byte(`manifests:
  - {name: a, version: v1, url: "http://x/a.yaml", sha256: abc}
  - {name: a, version: "", url: "https://x/b.yaml"}
  - {name: ../c, version: v1, url: "https://x/c.yaml", note: n}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`manifests[0] a: url "http://x/a.yaml": want https://HOST/PATH`,
		`manifests[0] a: sha256 "abc": want 64 lower-case hex digits`,
		`manifests[1] a: name empty, repeated or not a file name`,
		`manifests[1] a: version empty`,
		`manifests[1] a: no sha256 and no note saying why`,
		`manifests[2] ../c: name empty, repeated or not a file name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := parseManifests([]byte("manifests:\n  - {name: a, version: v1, url: \"https://x/a\", note: n, extra: 1}\n")); err == nil {
		t.Error("unknown field accepted")
	}
}

// A pinned manifest is fetched once into the cache, then read from it.
func TestGetManifestPinnedFetchesOnceIntoCache(t *testing.T) {
	t.Setenv(ManifestsEnv, "")
	body := []byte("kind: ConfigMap\n")
	url, hits := manifestServer(t, &body)
	cache := t.TempDir()
	m := Manifest{Name: "x", Version: "v1", URL: url, SHA256: sha(body)}
	f, err := GetManifest(context.Background(), m, ManifestOptions{Cache: cache, Dir: ""})
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != string(body) || f.From != url || f.Digest != sha(body) || !strings.Contains(f.Trust, "pinned") {
		t.Errorf("got %+v", f)
	}
	cached := filepath.Join(cache, "manifests", "x-v1.yaml")
	if b, err := os.ReadFile(cached); err != nil || string(b) != string(body) {
		t.Errorf("cache %s: %q, %v", cached, b, err)
	}
	if _, err := os.Stat(filepath.Join(cache, "manifests", "x-v1.sha256")); err == nil {
		t.Error("a pinned manifest needs no first-use record")
	}
	f, err = GetManifest(context.Background(), m, ManifestOptions{Cache: cache})
	if err != nil || f.From != cached {
		t.Errorf("second get: from %q, %v", f.From, err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests, want 1", hits.Load())
	}
}

// A server serving other bytes than the pinned ones is refused, with the
// URL, the pinned digest and the one served; nothing is cached.
func TestGetManifestChecksumMismatch(t *testing.T) {
	t.Setenv(ManifestsEnv, "")
	body := []byte("kind: ConfigMap\nchanged: true\n")
	url, _ := manifestServer(t, &body)
	cache := t.TempDir()
	want := sha([]byte("kind: ConfigMap\n"))
	_, err := GetManifest(context.Background(), Manifest{Name: "x", Version: "v1", URL: url, SHA256: want}, ManifestOptions{Cache: cache})
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("err %v, want ErrChecksumMismatch", err)
	}
	for _, s := range []string{url, "want " + want, "got " + sha(body), "refusing it"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "manifests", "x-v1.yaml")); err == nil {
		t.Error("a refused manifest was cached")
	}
}

// An unpinned manifest is trusted the first time and its digest recorded;
// later bytes must match the record, wherever they come from.
func TestGetManifestTrustOnFirstUse(t *testing.T) {
	t.Setenv(ManifestsEnv, "")
	body := []byte("kind: List\nitems: []\n")
	url, _ := manifestServer(t, &body)
	cache := t.TempDir()
	m := Manifest{Name: "w", Version: "2", URL: url, Note: "tofu"}
	f, err := GetManifest(context.Background(), m, ManifestOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(cache, "manifests", "w-2.sha256")
	if !strings.Contains(f.Trust, "trusted on first use") || !strings.Contains(f.Trust, record) {
		t.Errorf("trust %q", f.Trust)
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != sha(body)+"  w-2.yaml\n" {
		t.Errorf("record: %q, %v", b, err)
	}
	// The cached copy matches its record.
	if f, err := GetManifest(context.Background(), m, ManifestOptions{Cache: cache}); err != nil || !strings.Contains(f.Trust, "matches the one recorded") {
		t.Errorf("cached: %+v, %v", f.Trust, err)
	}
	// The server now serves something else: a fresh fetch is refused.
	old := sha(body)
	body = []byte("kind: List\nitems: [evil]\n")
	if err := os.Remove(filepath.Join(cache, "manifests", "w-2.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err = GetManifest(context.Background(), m, ManifestOptions{Cache: cache})
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "want "+old) ||
		!strings.Contains(err.Error(), "got "+sha(body)) || !strings.Contains(err.Error(), record) {
		t.Errorf("changed bytes: %v", err)
	}
	// So is a user's file with other bytes.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.yaml"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := GetManifest(context.Background(), m, ManifestOptions{Cache: cache, Dir: dir}); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("user file with other bytes: %v", err)
	}
}

// A folder the user gives (LABRUN_MANIFESTS) is read instead of the network,
// and checked the same way.
func TestGetManifestFromUserFolder(t *testing.T) {
	body := []byte("kind: ConfigMap\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.yaml"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	never := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("fetched %s although a folder was given", r.URL)
		return nil, errors.New("no network")
	})}
	t.Setenv(ManifestsEnv, dir)
	m := Manifest{Name: "x", Version: "v1", URL: "https://example.invalid/x.yaml", SHA256: sha(body)}
	f, err := GetManifest(context.Background(), m, ManifestOptions{Cache: t.TempDir(), Client: never})
	if err != nil || f.From != filepath.Join(dir, "x.yaml") {
		t.Fatalf("from %q, %v", f.From, err)
	}
	m.SHA256 = sha([]byte("other"))
	if _, err := GetManifest(context.Background(), m, ManifestOptions{Cache: t.TempDir(), Client: never}); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("wrong pin: %v", err)
	}
	m.Name = "absent"
	_, err = GetManifest(context.Background(), m, ManifestOptions{Cache: t.TempDir(), Client: never})
	if err == nil || !strings.Contains(err.Error(), ManifestsEnv+"="+dir) || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An unreachable URL fails at once, saying how to give the file instead; an
// HTTP error names the status.
func TestGetManifestUnreachable(t *testing.T) {
	t.Setenv(ManifestsEnv, "")
	down := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("dial tcp: connect: network is unreachable")
	})}
	m := Manifest{Name: "x", Version: "v1", URL: "https://example.invalid/x.yaml", SHA256: sha([]byte("a"))}
	start := time.Now()
	_, err := GetManifest(context.Background(), m, ManifestOptions{Cache: t.TempDir(), Client: down})
	if err == nil || !strings.Contains(err.Error(), "https://example.invalid/x.yaml") || !strings.Contains(err.Error(), ManifestsEnv+"=DIR holding x.yaml") {
		t.Errorf("unreachable: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	body := []byte("a")
	url, _ := manifestServer(t, &body)
	m.URL = url + ".missing"
	if _, err := GetManifest(context.Background(), m, ManifestOptions{Cache: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}
