package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ociImage describes an image assembled in Go, with no registry and no
// Dockerfile: an optional root file system tarball as its base layer, then one
// layer with the given files.
type ociImage struct {
	Ref        string            // repo:tag written into the tarball
	BaseRootfs string            // path of a rootfs tarball (debootstrap), or "" for an empty base
	Files      map[string]string // path in the image → source file on the host
	Entrypoint []string
	Env        []string
	Labels     map[string]string
}

// write saves the image as a docker-loadable tarball at dst.
func (o ociImage) write(dst string) error {
	tag, err := name.NewTag(o.Ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", o.Ref, err)
	}
	var img v1.Image = empty.Image
	if o.BaseRootfs != "" {
		base, err := tarball.LayerFromFile(o.BaseRootfs)
		if err != nil {
			return fmt.Errorf("base layer %s: %w", o.BaseRootfs, err)
		}
		if img, err = mutate.AppendLayers(img, base); err != nil {
			return err
		}
	}
	layer, err := filesLayer(o.Files)
	if err != nil {
		return err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	// Without a platform, containerd refuses the image on import.
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = o.Entrypoint
	cf.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, o.Env...)
	cf.Config.Labels = o.Labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.WriteToFile(dst, tag, img)
}

// filesLayer makes a layer holding each host file at its image path, with its
// parent folders, in a fixed order and with fixed times so the digest is stable.
func filesLayer(files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(path.Clean("/" + p)); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sortedDirs := make([]string, 0, len(dirs))
	for d := range dirs {
		sortedDirs = append(sortedDirs, d)
	}
	sort.Strings(sortedDirs)
	for _, d := range sortedDirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		src := files[p]
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", src, err)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: path.Clean(p)[1:], Mode: int64(st.Mode().Perm()), Size: st.Size()}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
