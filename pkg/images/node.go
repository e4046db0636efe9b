package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	data "labrun.dev/labrun/images"
)

// nodeRecipe and labNodeRecipe change when buildNode or labNodeStep change
// in a way their inputs (importScript's text among them) do not show.
const (
	nodeRecipe    = "node recipe 3: images unpacked into /kind/snapshots"
	labNodeRecipe = "lab node recipe 3: images unpacked into /kind/snapshots"
)

// nodeStep makes the kind node image: the Debian node rootfs, the Kubernetes,
// containerd, runc, crictl and CNI binaries, our configuration and entrypoint,
// and every component image imported into the node's containerd (namespace
// k8s.io, pinned) so that creating a cluster pulls nothing. kind needs
// /kind/version and /kind/manifests/default-cni.yaml.
func nodeStep(v Versions, k Kubernetes, rootfs, kube, containerd, runc, crictl, cni *Step, components []*Step) *Step {
	deps := append([]*Step{rootfs, kube, containerd, runc, crictl, cni}, components...)
	ref := NodeImage(k)
	files, _ := fs.Sub(data.FS, "node/files")
	return &Step{
		Name:   "node-" + k.Version,
		From:   "rootfs/node + kubernetes " + k.Version + ", containerd " + v.Containerd + ", runc " + v.Runc + ", " + fmt.Sprint(len(components)) + " preloaded images",
		Inputs: []string{nodeRecipe, ref, k.Pause, treeDigest(files), data.LabnetManifest, hashOf(importScript)},
		Deps:   deps,
		Image:  ref,
		build: func(ctx context.Context, j *job) error {
			return buildNode(ctx, j, k, ref, files, rootfs, kube, containerd, runc, crictl, cni, components)
		},
	}
}

func buildNode(ctx context.Context, j *job, k Kubernetes, ref string, files fs.FS, rootfs, kube, containerd, runc, crictl, cni *Step, components []*Step) error {
	base := rootfs.Image
	// One tar stream with everything the node carries besides its rootfs.
	var overlay bytes.Buffer
	tw := tar.NewWriter(&overlay)
	add := func(dst, src string, mode int64) error { return tarFile(tw, dst, src, mode) }
	addBytes := func(dst string, b []byte, mode int64) error { return tarBytes(tw, dst, b, mode) }
	if err := tarTree(tw, files, strings.NewReplacer("@PAUSE@", k.Pause)); err != nil {
		return err
	}
	bins := []struct {
		step      *Step
		name, dst string
	}{
		{kube, "kubeadm", "/usr/bin/kubeadm"}, {kube, "kubelet", "/usr/bin/kubelet"}, {kube, "kubectl", "/usr/bin/kubectl"},
		{containerd, "containerd", "/usr/local/bin/containerd"}, {containerd, "ctr", "/usr/local/bin/ctr"},
		{containerd, "containerd-shim-runc-v2", "/usr/local/bin/containerd-shim-runc-v2"},
		{runc, "runc", "/usr/local/sbin/runc"}, {crictl, "crictl", "/usr/local/bin/crictl"},
	}
	for _, b := range bins {
		if err := add(b.dst, b.step.File(b.name), 0o755); err != nil {
			return err
		}
	}
	for _, p := range []string{"ptp", "bridge", "loopback", "host-local", "portmap"} {
		if err := add("/opt/cni/bin/"+p, cni.File(p), 0o755); err != nil {
			return err
		}
	}
	var labnetRef string
	for i, c := range components {
		if err := add(fmt.Sprintf("/kind/images/%02d.tar", i), ImageTar(c), 0o644); err != nil {
			return err
		}
		if strings.HasPrefix(c.Name, "image/labnet") {
			var err error
			if labnetRef, err = ImageRef(c); err != nil {
				return err
			}
		}
	}
	if err := addBytes("/kind/version", []byte(k.Version+"\n"), 0o644); err != nil {
		return err
	}
	manifest := strings.ReplaceAll(data.LabnetManifest, "@IMAGE@", labnetRef)
	if err := addBytes("/kind/manifests/default-cni.yaml", []byte(manifest), 0o644); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	refs := make([]string, len(components))
	for i, c := range components {
		refs[i], _ = ImageRef(c)
	}
	return commitNode(ctx, j, base, ref, &overlay, refs)
}

// plainSnapshot defines plain_snapshot DIR, which fails, naming DIR, when the
// tree holds an overlay whiteout (a 0,0 character device) or an opaque folder
// (a trusted.overlay.* xattr, user.overlay.* in a user namespace), or when
// its xattrs cannot be read: docker commit would apply them to the image
// itself, deleting its own files. The lab's image layers have none (each is a
// whole rootfs or added files): a snapshot that has one fails the build rather
// than change the image silently.
const plainSnapshot = `plain_snapshot() {
  command -v getfattr >/dev/null || { echo "getfattr is missing (Debian's attr)" >&2; return 1; }
  local xattrs
  xattrs=$(getfattr -R -P -h --absolute-names -m '^(trusted|user)\.overlay\.' "$1") ||
    { echo "getfattr could not read the xattrs of snapshot $1" >&2; return 1; }
  if [ -n "$xattrs" ] || find "$1" -type c -exec stat -c '%t,%T' {} + | grep -qx '0,0'; then
    echo "snapshot $1 holds an overlay whiteout or opaque folder, which docker commit would apply to the node image itself" >&2
    return 1
  fi
}
`

// importScript runs in the build container: it imports /kind/images/*.tar
// into the node's containerd (namespace k8s.io, pinned) and unpacks them, once
// for every cluster. Unpacked at a node's boot or first container, they cost
// ~20 s of CPU per cluster on 2 cores, beside kubeadm (docs/offline-images.md).
//
// containerd's overlay snapshotter cannot unpack onto the build container's
// own root (an overlay file system): it works on a tmpfs over its folder,
// seeded with a copy (its database and the links to snapshots kept by the
// image beneath). Then each new snapshot moves to /kind/snapshots, in the
// image's own layers, and the snapshotter's folder keeps a link to it: a node
// copies its /var into a volume of its own when it is created (kind), and the
// links are all it copies of them; its overlay mounts read the snapshots in
// place, as lower layers, shared by every node in the page cache. The content
// store's blobs (the compressed layers, which containerd keeps beside the
// snapshots) move to /kind/blobs the same way. A snapshot docker commit
// would change fails the build (plainSnapshot).
const importScript = plainSnapshot + `set -eu
systemctl enable containerd.service kubelet.service >/dev/null 2>&1
mkdir -p /etc/cni/net.d /var/lib/kubelet /etc/kubernetes/manifests
snap=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs
keep=/kind/snapshots
work=/run/labrun-snapshotter
mkdir -p $snap $keep $work
mount -t tmpfs tmpfs $work
cp -a $snap/. $work/
mount --bind $work $snap
containerd >/var/log/containerd-build.log 2>&1 &
pid=$!
for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
for t in /kind/images/*.tar; do
  ctr -n k8s.io images import --platform linux/amd64 --label io.cri-containerd.pinned=pinned "$t"
done
ctr -n k8s.io images ls -q
kill $pid; wait $pid || true
umount $snap
for d in $work/snapshots/*; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  id=${d##*/}
  plain_snapshot "$d" || exit 1
  [ ! -e $keep/$id ] || { echo "$keep/$id exists already: the snapshotter's database and the image disagree" >&2; exit 1; }
  cp -a "$d" $keep/$id
  rm -rf "$d"
  ln -s $keep/$id "$d"
  echo "kept snapshot $id: $(du -sm $keep/$id | cut -f1) MB"
done
rm -rf $snap
cp -a $work $snap
umount $work
rmdir $work
blobs=/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256
mkdir -p /kind/blobs
for b in $blobs/*; do
  [ -f "$b" ] && [ ! -L "$b" ] || continue
  mv "$b" /kind/blobs/
  ln -s /kind/blobs/${b##*/} "$b"
done
rm -rf /kind/images /var/log/containerd-build.log /run/containerd /tmp/*
`

// commitNode makes node image ref from base: it copies overlay (a tar stream
// whose /kind/images/*.tar are image tarballs) into a build container,
// imports and unpacks those images into the node's containerd (importScript)
// and commits. Whatever happens, the build container
// goes away; ref is only written by `docker commit`, after every step
// succeeded. An image ref named before by an older build is removed when
// nothing uses it (it would stay behind as an untagged image).
func commitNode(ctx context.Context, j *job, base, ref string, overlay io.Reader, want []string) error {
	d := j.docker
	ctr := BuildContainerPrefix + "node-" + j.step.key[:12]
	cleanup := func() { d.Run(context.WithoutCancel(ctx), "rm", "-f", "-v", ctr) }
	cleanup()
	defer cleanup()

	if _, err := d.Run(ctx, "run", "-d", "--privileged", "--name", ctr,
		"--entrypoint", "/bin/sleep", base, "infinity"); err != nil {
		return err
	}
	if _, err := d.RunStdin(ctx, overlay, "cp", "-", ctr+":/"); err != nil {
		return err
	}
	out, err := d.Run(ctx, "exec", ctr, "bash", "-c", importScript)
	fmt.Fprintf(j.log, "%s\n", out)
	if err != nil {
		return fmt.Errorf("import images into the node's containerd: %w", err)
	}
	for _, r := range want {
		if !strings.Contains(out, r) {
			return fmt.Errorf("image %s missing from the node's containerd after import (see %s)", r, j.logPath)
		}
	}
	if _, err := d.Run(ctx, "stop", "-t", "1", ctr); err != nil {
		return err
	}
	old, hadOld := d.Inspect(ctx, ref)
	if _, err := d.Run(ctx, "commit",
		"--change", `ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`,
		"--change", `CMD []`,
		"--change", "ENV container=docker",
		"--change", "LABEL "+LabelKey+"="+j.step.key,
		"--change", fmt.Sprintf("LABEL %s=%q", LabelFrom, j.step.From),
		ctr, ref); err != nil {
		return err
	}
	if hadOld {
		// Fails, harmlessly, while a cluster or a child image uses it.
		d.Run(context.WithoutCancel(ctx), "image", "rm", old.ID)
	}
	return nil
}

// labNodeStep makes the node image clusters start from: the node image with
// the lab's own images (probes, lab DNS server, race emulator agent)
// preloaded too, so that creating a cluster loads nothing into its nodes.
// They change with this repository's code, so they are a thin layer of their
// own: a code change rebuilds this layer (seconds), never the node beneath.
func labNodeStep(k Kubernetes, node *Step, lab []*Step) *Step {
	ref := LabNodeImage(k)
	return &Step{
		Name:   "node-" + k.Version + "-lab",
		From:   node.Image + " + " + fmt.Sprint(len(lab)) + " lab images preloaded",
		Inputs: []string{labNodeRecipe, ref, hashOf(importScript)},
		Deps:   append([]*Step{node}, lab...),
		Image:  ref,
		build: func(ctx context.Context, j *job) error {
			var overlay bytes.Buffer
			tw := tar.NewWriter(&overlay)
			refs := make([]string, len(lab))
			for i, s := range lab {
				var err error
				if refs[i], err = ImageRef(s); err != nil {
					return err
				}
				if err := tarFile(tw, fmt.Sprintf("/kind/images/lab-%02d.tar", i), ImageTar(s), 0o644); err != nil {
					return err
				}
			}
			if err := tw.Close(); err != nil {
				return err
			}
			return commitNode(ctx, j, node.Image, ref, &overlay, refs)
		},
	}
}

// tarTree adds every file of files at its path from /, executable under
// usr/local/bin, with r's replacements made in its text.
func tarTree(tw *tar.Writer, files fs.FS, r *strings.Replacer) error {
	return fs.WalkDir(files, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		b = []byte(r.Replace(string(b)))
		mode := int64(0o644)
		if strings.HasPrefix(p, "usr/local/bin/") {
			mode = 0o755
		}
		return tarBytes(tw, "/"+p, b, mode)
	})
}

func tarSymlink(tw *tar.Writer, dst, target string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(dst, "/"), Linkname: target,
		Mode: 0o777, ModTime: time.Unix(0, 0)})
}

func tarBytes(tw *tar.Writer, dst string, b []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: mode,
		Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func tarFile(tw *tar.Writer, dst, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: mode,
		Size: st.Size(), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// treeDigest hashes an embedded folder (the node's files) into the key.
func treeDigest(fsys fs.FS) string {
	var parts []string
	fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := fs.ReadFile(fsys, p)
			parts = append(parts, path.Clean(p), string(b))
		}
		return nil
	})
	return hashOf(parts...)
}
