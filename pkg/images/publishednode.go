package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PublishedNodeAxis is the axis value whose image is kind's published node
// (images/published.yaml, forAxis).
const PublishedNodeAxis = "nodeImage=published"

// PublishedNode is the node image a cluster of nodeImage: published starts
// from: kind's kindest/node, pulled or imported into the artifact cache
// (labrun images pull kind-node), and loaded into Docker for kind.
type PublishedNode struct {
	Ref    string // as images/published.yaml names it: what kind starts
	Record Record // where it came from (pulled from, digest)
}

// EnsurePublishedNode finds the published node image in the cache and loads
// it into Docker, unless Docker already holds that very image under its
// name. The error says how to get it when the cache lacks it.
func EnsurePublishedNode(ctx context.Context, cache string, progress io.Writer) (PublishedNode, error) {
	if cache == "" {
		cache = DefaultCache()
	}
	recs, err := StoredFor(cache, PublishedNodeAxis)
	if err != nil {
		return PublishedNode{}, err
	}
	if len(recs) != 1 {
		return PublishedNode{}, fmt.Errorf("images/published.yaml: %d images for %s, want 1", len(recs), PublishedNodeAxis)
	}
	rec := recs[0]
	list, err := LoadPublished()
	if err != nil {
		return PublishedNode{}, err
	}
	ref := rec.Ref
	for _, p := range list {
		if p.Needed(PublishedNodeAxis) {
			ref = p.Ref
		}
	}
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return PublishedNode{}, fmt.Errorf("node image %s: %w", ref, err)
	}
	img, err := tarball.ImageFromPath(rec.Tarball, &tag)
	if err != nil {
		// Imported under another spelling of the name: the tarball's only image.
		if img, err = tarball.ImageFromPath(rec.Tarball, nil); err != nil {
			return PublishedNode{}, fmt.Errorf("node image %s: %s: %w", ref, rec.Tarball, err)
		}
	}
	config, err := img.ConfigName()
	if err != nil {
		return PublishedNode{}, fmt.Errorf("node image %s: %s: %w", ref, rec.Tarball, err)
	}
	var d Docker
	if info, ok := d.Inspect(ctx, ref); ok && info.ID == config.String() {
		return PublishedNode{Ref: ref, Record: rec}, nil
	}
	start := time.Now()
	if progress != nil {
		size := int64(0)
		if st, err := os.Stat(rec.Tarball); err == nil {
			size = st.Size()
		}
		fmt.Fprintf(progress, "images: loading the published node %s into Docker (%d MB, %s %s)\n", ref, size>>20, rec.Source, rec.From)
	}
	f, err := os.Open(rec.Tarball)
	if err != nil {
		return PublishedNode{}, err
	}
	defer f.Close()
	if _, err := d.RunStdin(ctx, f, "load"); err != nil {
		return PublishedNode{}, fmt.Errorf("docker load %s: %w", rec.Tarball, err)
	}
	// An imported tarball may name the image another way (kindest/node:TAG):
	// kind is given ref, so make sure that name is there.
	if info, ok := d.Inspect(ctx, ref); !ok || info.ID != config.String() {
		if _, err := d.Run(ctx, "tag", config.String(), ref); err != nil {
			return PublishedNode{}, fmt.Errorf("docker tag %s %s: %w", config, ref, err)
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "images: %s loaded in %s\n", ref, time.Since(start).Round(100*time.Millisecond))
	}
	return PublishedNode{Ref: ref, Record: rec}, nil
}
