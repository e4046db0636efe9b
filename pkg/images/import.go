package images

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Import stores every image of a docker-loadable tarball (`docker save`,
// `crane pull`) in the cache under its repo:tag, so the runner can load it
// into a cluster's nodes like a pulled one. Each image must carry a tag: it
// is the name the manifests ask for.
func Import(cache, file string) ([]Record, error) {
	if cache == "" {
		cache = DefaultCache()
	}
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("import %s: not a docker-loadable tarball (docker save / crane pull format): %w", file, err)
	}
	type tagged struct {
		tag name.Tag
		img v1.Image
	}
	var todo []tagged
	for i, m := range manifest {
		if len(m.RepoTags) == 0 {
			return nil, fmt.Errorf("import %s: image %d (%s) has no repo:tag; save it by name (docker save REPO:TAG) so the lab knows which name the manifests use", file, i+1, m.Config)
		}
		for _, t := range m.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return nil, fmt.Errorf("import %s: tag %q: %w", file, t, err)
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return nil, fmt.Errorf("import %s: %s: %w", file, t, err)
			}
			todo = append(todo, tagged{tag, img})
		}
	}
	var out []Record
	for _, t := range todo {
		d, err := t.img.Digest()
		if err != nil {
			return nil, fmt.Errorf("import %s: %s: %w", file, t.tag, err)
		}
		// The tag as the tarball spells it: the name containerd gives the image.
		rec := Record{Ref: t.tag.String(), Source: SourceImported, From: file, Digest: d.String(), Image: d.String(), Time: time.Now().UTC()}
		rec, err = saveRecord(cache, rec, func(path string) error {
			// One image with one tag: keep the user's file as it is.
			if len(todo) == 1 {
				return copyFile(file, path)
			}
			return tarball.WriteToFile(path, t.tag, t.img)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
