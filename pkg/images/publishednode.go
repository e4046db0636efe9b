package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PublishedNodeAxis is the axis value whose image is kind's published node
// (images/published.yaml, forAxis).
const PublishedNodeAxis = "nodeImage=published"

// IsNode says whether the entry is kind's node image (nodeImage: published),
// a gigabyte that only a shape of that node image needs.
func (p Published) IsNode() bool { return p.Needed(PublishedNodeAxis) }

// IsNodeRef says whether ref is the published node image's.
func IsNodeRef(ref string) bool {
	list, err := LoadPublished()
	return err == nil && slices.ContainsFunc(list, func(p Published) bool { return p.IsNode() && p.Ref == ref })
}

// WithoutNode is the list without the node image: what "every published
// image" means for pulls that no shape asked for (images pull --all, images
// build --mirror).
func WithoutNode(list []Published) []Published {
	var out []Published
	for _, p := range list {
		if !p.IsNode() {
			out = append(out, p)
		}
	}
	return out
}

// PublishedNode is the node image a cluster of nodeImage: published starts
// from: kind's kindest/node, pulled or imported into the artifact cache
// (labrun images pull kind-node), and loaded into Docker for kind.
type PublishedNode struct {
	Ref    string // as images/published.yaml names it: what kind starts
	Record Record // where it came from (pulled from, digest)
	// Unpinned says how the stored image differs from the pin ("" when it
	// is the pinned digest): an image imported, or pulled with another pin.
	Unpinned string
}

// FindPublishedNode returns the stored published node image, or an error
// that says how to get it.
func FindPublishedNode(cache string) (PublishedNode, error) {
	if cache == "" {
		cache = DefaultCache()
	}
	list, err := LoadPublished()
	if err != nil {
		return PublishedNode{}, err
	}
	i := slices.IndexFunc(list, Published.IsNode)
	if i < 0 {
		return PublishedNode{}, fmt.Errorf("images/published.yaml has no image for %s", PublishedNodeAxis)
	}
	recs, err := StoredFor(cache, PublishedNodeAxis)
	if err != nil {
		return PublishedNode{}, err
	}
	n := PublishedNode{Ref: list[i].Ref, Record: recs[0]}
	if d := n.Record.Digest; d != list[i].Digest {
		n.Unpinned = fmt.Sprintf("%s %s, not the pinned %s", n.Record.Source, d, list[i].Digest)
	}
	return n, nil
}

// LoadIntoDocker loads the stored image into Docker under n.Ref, unless
// Docker already holds that very image under that name.
func (n PublishedNode) LoadIntoDocker(ctx context.Context, progress io.Writer) error {
	img, err := tarball.ImageFromPath(n.Record.Tarball, nil)
	if err != nil {
		return fmt.Errorf("node image %s: %s: %w", n.Ref, n.Record.Tarball, err)
	}
	config, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("node image %s: %s: %w", n.Ref, n.Record.Tarball, err)
	}
	// Docker names an image by its config digest, or (its containerd image
	// store) by its manifest's: either is this image.
	ids := []string{config.String(), n.Record.Image}
	var d Docker
	if info, ok := d.Inspect(ctx, n.Ref); ok && slices.Contains(ids, info.ID) {
		return nil
	}
	start := time.Now()
	if st, err := os.Stat(n.Record.Tarball); err == nil && progress != nil {
		fmt.Fprintf(progress, "images: loading the published node %s into Docker (%d MB, %s from %s)\n", n.Ref, st.Size()>>20, n.Record.Source, n.Record.From)
	}
	f, err := os.Open(n.Record.Tarball)
	if err != nil {
		return fmt.Errorf("node image %s: %w", n.Ref, err)
	}
	defer f.Close()
	if _, err := d.RunStdin(ctx, f, "load"); err != nil {
		return fmt.Errorf("docker load %s: %w", n.Record.Tarball, err)
	}
	// An imported tarball may name the image another way (kindest/node:TAG):
	// kind is given n.Ref, so that name must be there.
	if info, ok := d.Inspect(ctx, n.Ref); !ok || !slices.Contains(ids, info.ID) {
		var errs []error
		for _, id := range ids {
			_, err := d.Run(ctx, "tag", id, n.Ref)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("docker tag the loaded %s as %s: %w", n.Record.Tarball, n.Ref, errors.Join(errs...))
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "images: %s loaded in %s\n", n.Ref, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}
