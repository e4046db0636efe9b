package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PullOptions say where published images are pulled from.
type PullOptions struct {
	Cache string // "" means DefaultCache()
	// Mirror is HOST[:PORT] of a registry mirroring the published ones
	// (registry.k8s.io/dns/x:tag is pulled as MIRROR/dns/x:tag, the pinned
	// digest kept and checked); "http://HOST[:PORT]" for a plain-HTTP
	// mirror. "" pulls from each image's own registry.
	Mirror string
	// Timeout bounds one image's pull, download included (default 10 min);
	// connecting is bounded much tighter (dialTimeout), so an unreachable
	// registry fails in seconds.
	Timeout  time.Duration
	Progress io.Writer
}

const (
	dialTimeout   = 5 * time.Second
	headerTimeout = 15 * time.Second
	pullTimeout   = 10 * time.Minute
)

// pullTransport fails fast when nothing answers: the lab's machines reach no
// registry, and a pull must say so in seconds, not hang.
func pullTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: headerTimeout,
		MaxIdleConnsPerHost:   4,
	}
}

// PullRef is the reference an image is pulled from: its own, or the same
// repository path and tag under mirror.
func PullRef(ref, mirror string) (name.Tag, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image %q: %w", ref, err)
	}
	if mirror == "" {
		return tag, nil
	}
	host, plainHTTP := strings.CutPrefix(mirror, "http://")
	if strings.Contains(host, "/") || strings.Contains(host, "://") || host == "" {
		return name.Tag{}, fmt.Errorf("mirror %q: want HOST[:PORT] (or http://HOST[:PORT] for plain HTTP), no path", mirror)
	}
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	out, err := name.NewTag(host+"/"+tag.RepositoryStr()+":"+tag.TagStr(), append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("mirror %q: %w", mirror, err)
	}
	return out, nil
}

// ErrDigestMismatch is returned when a registry serves, for a pinned image,
// something other than its pinned digest.
var ErrDigestMismatch = errors.New("digest mismatch")

// Pull fetches one published image (its linux/amd64 image) into the cache as
// a docker-loadable tarball named p.Ref, checking the pinned digest. It tries
// once, with short connection timeouts.
func Pull(ctx context.Context, p Published, o PullOptions) (Record, error) {
	if o.Cache == "" {
		o.Cache = DefaultCache()
	}
	if o.Timeout <= 0 {
		o.Timeout = pullTimeout
	}
	dst, err := name.NewTag(p.Ref, name.StrictValidation)
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", p.Name, err)
	}
	src, err := PullRef(p.Ref, o.Mirror)
	if err != nil {
		return Record{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	never := func(error) bool { return false }
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(pullTransport()),
		remote.WithRetryPredicate(never),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
		remote.WithUserAgent("labrun"),
	}
	desc, err := fetchPinned(p, src, opts)
	if err != nil {
		return Record{}, err
	}
	img, err := desc.Image() // an index resolves to its linux/amd64 image
	if err != nil {
		return Record{}, pullError(p, src, err)
	}
	imgDigest, err := img.Digest()
	if err != nil {
		return Record{}, pullError(p, src, err)
	}
	rec := Record{Ref: p.Ref, Source: SourcePulled, From: src.String() + "@" + desc.Digest.String(),
		Digest: desc.Digest.String(), Image: imgDigest.String(), Time: time.Now().UTC()}
	// Layers are downloaded (and their digests checked by go-containerregistry)
	// while the tarball is written.
	return saveRecord(o.Cache, rec, func(path string) error {
		if err := tarball.WriteToFile(path, dst, img); err != nil {
			return pullError(p, src, err)
		}
		return nil
	})
}

// fetchPinned gets the image's manifest: by its pinned digest when it has
// one (so a moved tag still yields the pinned content, and a digest-only
// mirror works), else by tag. When the registry lacks the pinned digest, the
// tag is looked up once to say what the registry serves instead.
func fetchPinned(p Published, src name.Tag, opts []remote.Option) (*remote.Descriptor, error) {
	if p.Digest == "" {
		desc, err := remote.Get(src, opts...)
		if err != nil {
			return nil, pullError(p, src, err)
		}
		return desc, nil
	}
	desc, err := remote.Get(src.Context().Digest(p.Digest), opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		if head, herr := remote.Head(src, opts...); herr == nil && head.Digest.String() != p.Digest {
			return nil, mismatch(p, src, head.Digest.String())
		}
	}
	if err != nil {
		return nil, pullError(p, src, err)
	}
	// go-containerregistry checks a manifest fetched by digest against it;
	// checked again here because the whole point of the pin is this.
	if desc.Digest.String() != p.Digest {
		return nil, mismatch(p, src, desc.Digest.String())
	}
	return desc, nil
}

func mismatch(p Published, src name.Tag, served string) error {
	return fmt.Errorf("pull %s from %s: %w: the registry serves %s for %s, images/published.yaml pins %s (which it does not have); refusing it",
		p.Ref, src.RegistryStr(), ErrDigestMismatch, served, src, p.Digest)
}

func pullError(p Published, src name.Tag, err error) error {
	var answered *transport.Error
	switch {
	case strings.Contains(err.Error(), "does not match requested digest"):
		// go-containerregistry's own check of content fetched by digest
		// (a plain error): the registry answered, with the wrong content.
		return fmt.Errorf("pull %s from %s: %w: %w", p.Ref, src.RegistryStr(), ErrDigestMismatch, err)
	case errors.As(err, &answered):
		return fmt.Errorf("pull %s from %s: %w", p.Ref, src.RegistryStr(), err)
	}
	return fmt.Errorf("pull %s from %s: %w (one try; no registry is reachable from the lab's own machines: "+
		"pull through a mirror with --mirror HOST[:PORT], or `labrun images import FILE.tar` an image saved elsewhere)",
		p.Ref, src.RegistryStr(), err)
}

// PullAll pulls each image, reporting every failure together; it returns
// the images it stored.
func PullAll(ctx context.Context, list []Published, o PullOptions) ([]Record, error) {
	var got []Record
	var errs []error
	for _, p := range list {
		start := time.Now()
		rec, err := Pull(ctx, p, o)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "images: pulled %s (%s) in %s\n", rec.Ref, rec.Digest, since(start))
		}
		got = append(got, rec)
	}
	return got, errors.Join(errs...)
}
