package images

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	data "labrun.dev/labrun/images"
)

// Source says where an image the lab uses came from.
type Source string

const (
	// SourceBuilt: made here by the offline pipeline (images build).
	SourceBuilt Source = "built"
	// SourcePulled: fetched from its registry, or a mirror, at its pinned digest (images pull).
	SourcePulled Source = "pulled"
	// SourceImported: loaded from a tarball the user gave (images import).
	SourceImported Source = "imported"
)

// Published is one entry of images/published.yaml: an image the lab cannot
// build here and takes as its project publishes it.
type Published struct {
	Name string `yaml:"name"`
	Ref  string `yaml:"ref"` // repo:tag as the manifests name it
	// Digest the registry must serve for Ref ("" when only the tag is pinned).
	Digest  string   `yaml:"digest"`
	ForAxis []string `yaml:"forAxis"` // "podNetwork=calico", ...
	Note    string   `yaml:"note"`
}

// Pinned is Ref with its digest, as a user would pull it by hand.
func (p Published) Pinned() string {
	if p.Digest == "" {
		return p.Ref
	}
	return p.Ref + "@" + p.Digest
}

// Registry is the registry host Ref names ("index.docker.io" for Docker Hub).
func (p Published) Registry() string {
	tag, err := name.NewTag(p.Ref, name.StrictValidation)
	if err != nil {
		return ""
	}
	return tag.RegistryStr()
}

// Needed says whether the axis value (e.g. "podNetwork=calico") needs it.
func (p Published) Needed(axisValue string) bool { return slices.Contains(p.ForAxis, axisValue) }

// LoadPublished reads the embedded images/published.yaml.
func LoadPublished() ([]Published, error) { return parsePublished(data.Published) }

func parsePublished(b []byte) ([]Published, error) {
	var doc struct {
		Images []Published `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("images/published.yaml: %w", err)
	}
	var problems []string
	seen := map[string]bool{}
	for i, p := range doc.Images {
		where := fmt.Sprintf("images[%d] %s", i, p.Name)
		if p.Name == "" || seen[p.Name] {
			problems = append(problems, where+": name empty or repeated")
		}
		seen[p.Name] = true
		// The ref must be repo:tag: it is the name the image gets in the
		// nodes, and the one the manifests ask for.
		if _, err := name.NewTag(p.Ref, name.StrictValidation); err != nil {
			problems = append(problems, fmt.Sprintf("%s: ref %q: want REGISTRY/REPO:TAG (%v)", where, p.Ref, err))
		}
		if p.Digest != "" {
			if h, err := v1.NewHash(p.Digest); err != nil || h.Algorithm != "sha256" {
				problems = append(problems, fmt.Sprintf("%s: digest %q: want sha256:64 hex digits", where, p.Digest))
			}
		} else if p.Note == "" {
			problems = append(problems, where+": no digest and no note saying why")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("images/published.yaml: %s", strings.Join(problems, "; "))
	}
	return doc.Images, nil
}

// FindPublished returns the entries named, or an error listing the known names.
func FindPublished(all []Published, names ...string) ([]Published, error) {
	var out []Published
	var unknown []string
	for _, n := range names {
		i := slices.IndexFunc(all, func(p Published) bool { return p.Name == n })
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, all[i])
	}
	if len(unknown) > 0 {
		var known []string
		for _, p := range all {
			known = append(known, p.Name)
		}
		return nil, fmt.Errorf("unknown published image(s) %s; known: %s (images/published.yaml)",
			strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}

// StoredFor returns the stored (pulled or imported) images that axis value
// (e.g. "podNetwork=calico") needs, for the runner to load into a cluster's
// nodes; the error names every one that is missing.
func StoredFor(cache, axisValue string) ([]Record, error) {
	if cache == "" {
		cache = DefaultCache()
	}
	list, err := LoadPublished()
	if err != nil {
		return nil, err
	}
	var out []Record
	var missing []string
	for _, p := range list {
		if !p.Needed(axisValue) {
			continue
		}
		rec, ok := FindStored(cache, p.Ref)
		if !ok {
			missing = append(missing, p.Name+" ("+p.Pinned()+")")
			continue
		}
		out = append(out, rec)
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%s needs published images not in %s: %s (labrun images pull, or labrun images import)",
			axisValue, storeDir(cache), strings.Join(missing, ", "))
	}
	return out, nil
}
