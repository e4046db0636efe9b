package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	data "labrun.dev/labrun/images"
)

// Manifest is one entry of images/manifests.yaml: a manifest the lab applies
// as its project publishes it, fetched at run time (never kept in this
// repository) and checked against its pinned sha256, or, when none could be
// pinned, against the digest recorded the first time (trust on first use).
type Manifest struct {
	Name    string   `yaml:"name"`    // also the file name a user gives: <name>.yaml
	Version string   `yaml:"version"` // the project's release
	URL     string   `yaml:"url"`
	SHA256  string   `yaml:"sha256"` // hex of the exact bytes at URL; "" = trust on first use
	ForAxis []string `yaml:"forAxis"`
	Note    string   `yaml:"note"`
}

// Pinned says whether the manifest's sha256 is pinned (else trust on first use).
func (m Manifest) Pinned() bool { return m.SHA256 != "" }

// ManifestsEnv names the environment variable that gives a folder of
// manifests (<name>.yaml) to read instead of fetching them.
const ManifestsEnv = "LABRUN_MANIFESTS"

const (
	manifestFolder  = "manifests"
	manifestTimeout = time.Minute
	maxManifestSize = 16 << 20
)

// ErrChecksumMismatch is returned when a manifest's bytes are not the ones
// pinned (or recorded on first use).
var ErrChecksumMismatch = errors.New("sha256 mismatch")

// LoadManifests reads the embedded images/manifests.yaml.
func LoadManifests() ([]Manifest, error) { return parseManifests(data.Manifests) }

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func parseManifests(b []byte) ([]Manifest, error) {
	var doc struct {
		Manifests []Manifest `yaml:"manifests"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("images/manifests.yaml: %w", err)
	}
	var problems []string
	seen := map[string]bool{}
	for i, m := range doc.Manifests {
		where := fmt.Sprintf("manifests[%d] %s", i, m.Name)
		// The name is a file name (<name>.yaml in LABRUN_MANIFESTS, and in the cache).
		if m.Name == "" || seen[m.Name] || strings.ContainsAny(m.Name, `/\`) || strings.HasPrefix(m.Name, ".") {
			problems = append(problems, where+": name empty, repeated or not a file name")
		}
		seen[m.Name] = true
		if m.Version == "" || strings.ContainsAny(m.Version, `/\`) {
			problems = append(problems, where+": version empty or not a file name part")
		}
		if u, err := url.Parse(m.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			problems = append(problems, fmt.Sprintf("%s: url %q: want https://HOST/PATH", where, m.URL))
		}
		switch {
		case m.SHA256 != "" && !hex64.MatchString(m.SHA256):
			problems = append(problems, fmt.Sprintf("%s: sha256 %q: want 64 lower-case hex digits", where, m.SHA256))
		case m.SHA256 == "" && m.Note == "":
			problems = append(problems, where+": no sha256 and no note saying why")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("images/manifests.yaml: %s", strings.Join(problems, "; "))
	}
	return doc.Manifests, nil
}

// FindManifest returns the entry named name, or an error listing the known names.
func FindManifest(all []Manifest, name string) (Manifest, error) {
	i := slices.IndexFunc(all, func(m Manifest) bool { return m.Name == name })
	if i < 0 {
		var known []string
		for _, m := range all {
			known = append(known, m.Name)
		}
		return Manifest{}, fmt.Errorf("unknown manifest %q; known: %s (images/manifests.yaml)", name, strings.Join(known, ", "))
	}
	return all[i], nil
}

// ManifestOptions say where a manifest comes from.
type ManifestOptions struct {
	Cache string // "" means DefaultCache()
	// Dir is a folder holding <name>.yaml, read instead of fetching; ""
	// means $LABRUN_MANIFESTS (unset: fetch).
	Dir string
	// Timeout bounds the download (default 1 min); connecting is bounded
	// much tighter, so an unreachable host fails in seconds.
	Timeout time.Duration
	// Client fetches the URL; nil means one with short connect timeouts.
	Client *http.Client
}

// FetchedManifest is a manifest's bytes, checked, and how they were trusted.
type FetchedManifest struct {
	Manifest
	Data   []byte
	From   string // the file read, the cached file, or the URL fetched
	Digest string // sha256 (hex) of Data
	Trust  string // how the digest was checked, for people
}

// manifestPaths are the cached copy and its first-use digest record.
func manifestPaths(cache string, m Manifest) (file, record string) {
	base := filepath.Join(cache, manifestFolder, m.Name+"-"+m.Version)
	return base + ".yaml", base + ".sha256"
}

// GetManifest returns the manifest's bytes, checked: from the folder the user
// gives (o.Dir, or $LABRUN_MANIFESTS), else from the artifact cache, else
// fetched from its URL into the cache. A pinned manifest must have its pinned
// sha256; an unpinned one must have the digest recorded the first time the
// lab got it, and is recorded now if it never was.
func GetManifest(ctx context.Context, m Manifest, o ManifestOptions) (FetchedManifest, error) {
	if o.Cache == "" {
		o.Cache = DefaultCache()
	}
	if o.Dir == "" {
		o.Dir = os.Getenv(ManifestsEnv)
	}
	if o.Timeout <= 0 {
		o.Timeout = manifestTimeout
	}
	cached, record := manifestPaths(o.Cache, m)
	if o.Dir != "" {
		file := filepath.Join(o.Dir, m.Name+".yaml")
		b, err := os.ReadFile(file)
		if err != nil {
			return FetchedManifest{}, fmt.Errorf("manifest %s %s: %s=%s was given: %w", m.Name, m.Version, ManifestsEnv, o.Dir, err)
		}
		return check(m, b, file, record)
	}
	if b, err := os.ReadFile(cached); err == nil {
		f, err := check(m, b, cached, record)
		if err != nil {
			return f, fmt.Errorf("%w (the cached copy; delete %s to fetch it again)", err, cached)
		}
		return f, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return FetchedManifest{}, fmt.Errorf("manifest %s %s: %w", m.Name, m.Version, err)
	}
	b, err := download(ctx, m, o)
	if err != nil {
		return FetchedManifest{}, err
	}
	f, err := check(m, b, m.URL, record)
	if err != nil {
		return f, err
	}
	if err := writeAtomic(cached, b); err != nil {
		return f, fmt.Errorf("manifest %s %s: cache it: %w", m.Name, m.Version, err)
	}
	return f, nil
}

// check compares b's sha256 with the pin, or with the first-use record
// (written now when there is none).
func check(m Manifest, b []byte, from, record string) (FetchedManifest, error) {
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	f := FetchedManifest{Manifest: m, Data: b, From: from, Digest: got}
	if m.Pinned() {
		if got != m.SHA256 {
			return FetchedManifest{}, fmt.Errorf("manifest %s %s (%s) from %s: %w: want %s (pinned in images/manifests.yaml), got %s; refusing it",
				m.Name, m.Version, m.URL, from, ErrChecksumMismatch, m.SHA256, got)
		}
		f.Trust = "sha256 pinned in images/manifests.yaml"
		return f, nil
	}
	if want, ok, err := readDigestRecord(record); err != nil {
		return FetchedManifest{}, err
	} else if ok {
		if got != want {
			return FetchedManifest{}, fmt.Errorf("manifest %s %s (%s) from %s: %w: want %s (recorded on first use in %s), got %s; refusing it (delete the record only if the new bytes are known good)",
				m.Name, m.Version, m.URL, from, ErrChecksumMismatch, want, record, got)
		}
		f.Trust = "sha256 matches the one recorded on first use in " + record
		return f, nil
	}
	line := fmt.Sprintf("%s  %s\n", got, filepath.Base(strings.TrimSuffix(record, ".sha256")+".yaml"))
	if err := writeAtomic(record, []byte(line)); err != nil {
		return FetchedManifest{}, fmt.Errorf("manifest %s %s: record its sha256: %w", m.Name, m.Version, err)
	}
	f.Trust = "trusted on first use: not pinned, sha256 recorded in " + record
	return f, nil
}

// readDigestRecord reads a first-use record (sha256sum's format).
func readDigestRecord(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("manifest digest record: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || !hex64.MatchString(fields[0]) {
		return "", false, fmt.Errorf("manifest digest record %s: want `SHA256  FILE`, got %q", path, strings.TrimSpace(string(b)))
	}
	return fields[0], true, nil
}

func download(ctx context.Context, m Manifest, o ManifestOptions) ([]byte, error) {
	client := o.Client
	if client == nil {
		client = &http.Client{Transport: pullTransport()}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("manifest %s %s: %w", m.Name, m.Version, err)
	}
	req.Header.Set("User-Agent", "labrun")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("manifest %s %s: fetch %s: %w (one try; the lab's own machines reach no internet: "+
			"save the file elsewhere and give its folder as %s=DIR holding %s.yaml)", m.Name, m.Version, m.URL, err, ManifestsEnv, m.Name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest %s %s: fetch %s: %s", m.Name, m.Version, m.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s %s: fetch %s: %w", m.Name, m.Version, m.URL, err)
	}
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s %s: fetch %s: larger than %d MiB", m.Name, m.Version, m.URL, maxManifestSize>>20)
	}
	return b, nil
}

// writeAtomic writes a file through a temporary one renamed into place.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".partial-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
