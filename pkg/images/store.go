package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Record is an image the lab took as published, pulled or imported: a
// docker-loadable tarball in the artifact cache and where it came from. The
// runner loads it into a cluster's nodes (Cluster.LoadImage), never relying
// on a pull from inside the cluster.
type Record struct {
	Ref    string    `json:"ref"`    // repo:tag inside the tarball: the name the nodes see
	Source Source    `json:"source"` // pulled | imported
	From   string    `json:"from"`   // the reference pulled (a mirror's included), or the tarball imported
	Digest string    `json:"digest"` // what the registry served for the ref (an index for multi-arch images), or the imported image's digest
	Image  string    `json:"image"`  // digest of the linux/amd64 image in the tarball
	Time   time.Time `json:"time"`

	Tarball string `json:"-"` // path of the tarball, set when read
}

const (
	storeFolder    = "published"
	recordFileName = "record.json"
)

// storeDir is where pulled and imported images live in the cache.
func storeDir(cache string) string { return filepath.Join(cache, storeFolder) }

// recordDir is the folder of one ref, by its canonical name:
// "registry.k8s.io/dns/x:1.2" → "registry.k8s.io_dns_x_1.2".
func recordDir(cache, ref string) string {
	return filepath.Join(storeDir(cache), strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(canonicalRef(ref)))
}

// canonicalRef spells a repo:tag the one way, so that "weaveworks/x:1",
// "docker.io/weaveworks/x:1" and "index.docker.io/weaveworks/x:1" (one image
// to containerd) are found as one.
func canonicalRef(ref string) string {
	tag, err := name.NewTag(ref)
	if err != nil {
		return ref
	}
	return tag.Name()
}

// saveRecord stores one image: write makes the tarball at the path it is
// given; the record is written last and the folder renamed into place, so an
// interrupted pull or import never leaves an image that looks complete.
func saveRecord(cache string, rec Record, write func(tarball string) error) (Record, error) {
	if err := os.MkdirAll(storeDir(cache), 0o755); err != nil {
		return Record{}, fmt.Errorf("image store %s: %w", storeDir(cache), err)
	}
	tmp, err := os.MkdirTemp(storeDir(cache), ".partial-")
	if err != nil {
		return Record{}, fmt.Errorf("image store: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := write(filepath.Join(tmp, tarFileName)); err != nil {
		return Record{}, err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return Record{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, recordFileName), append(b, '\n'), 0o644); err != nil {
		return Record{}, err
	}
	dst := recordDir(cache, rec.Ref)
	if err := os.RemoveAll(dst); err != nil {
		return Record{}, fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Record{}, fmt.Errorf("store %s: %w", rec.Ref, err)
	}
	rec.Tarball = filepath.Join(dst, tarFileName)
	return rec, nil
}

// StoredImages lists every pulled or imported image in the cache, by ref.
func StoredImages(cache string) ([]Record, error) {
	entries, err := os.ReadDir(storeDir(cache))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var out []Record
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rec, err := readRecord(filepath.Join(storeDir(cache), e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// FindStored returns the stored image named ref (repo:tag), if the cache has it.
func FindStored(cache, ref string) (Record, bool) {
	rec, err := readRecord(recordDir(cache, ref))
	return rec, err == nil && canonicalRef(rec.Ref) == canonicalRef(ref)
}

func readRecord(dir string) (Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFileName))
	if err != nil {
		return Record{}, fmt.Errorf("image store: %w", err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("image store: %s: %w", filepath.Join(dir, recordFileName), err)
	}
	rec.Tarball = filepath.Join(dir, tarFileName)
	if _, err := os.Stat(rec.Tarball); err != nil {
		return Record{}, fmt.Errorf("image store: %s has a record but no tarball: %w", dir, err)
	}
	return rec, nil
}

// publishedRows lists, for `images list`, every published image (stored or
// not) and every other image imported into the cache.
func publishedRows(cache string) ([]Row, error) {
	list, err := LoadPublished()
	if err != nil {
		return nil, err
	}
	stored, err := StoredImages(cache)
	if err != nil {
		return nil, err
	}
	var rows []Row
	shown := map[string]bool{}
	row := func(rec Record) Row {
		shown[canonicalRef(rec.Ref)] = true
		size := "-"
		if st, err := os.Stat(rec.Tarball); err == nil {
			size = humanBytes(st.Size())
		}
		return Row{Ref: rec.Ref, Size: size, Status: "present", Where: "cache", Source: rec.Source, From: rec.From}
	}
	for _, p := range list {
		if rec, ok := FindStored(cache, p.Ref); ok {
			rows = append(rows, row(rec))
			continue
		}
		pin := "tag pinned"
		if p.Digest != "" {
			pin = "pinned " + p.Digest[:len("sha256:")+12]
		}
		rows = append(rows, Row{Ref: p.Ref, Size: "-", Status: "missing", Where: "cache", Source: SourcePulled,
			From: "published (" + pin + "), cannot be built here: labrun images pull " + p.Name + " [--mirror HOST], or labrun images import FILE.tar"})
	}
	for _, rec := range stored {
		if !shown[canonicalRef(rec.Ref)] {
			rows = append(rows, row(rec))
		}
	}
	return rows, nil
}
