package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// plain_snapshot (importScript) tells the snapshots docker commit would keep
// from those it would change: real trees (with a dangling link, as Debian's
// alternatives leave) and a whiteout (mknod 0,0) or an opaque folder
// (trusted.overlay.opaque), which need root.
func TestIntegrationPlainSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mknod and trusted.* xattrs")
	}
	tree := func(t *testing.T, mark func(root string) error) string {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "fs/etc/ssl"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "fs/etc/hostname"), []byte("node\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Debian's alternatives: links to files the tree may not have.
		if err := os.Symlink("/usr/share/man/man1/labrun-absent.1.gz", filepath.Join(root, "fs/etc/which.1.gz")); err != nil {
			t.Fatal(err)
		}
		if err := mark(root); err != nil {
			t.Fatal(err)
		}
		return root
	}
	for _, tc := range []struct {
		name  string
		mark  func(root string) error
		plain bool
	}{
		{"files and folders", func(string) error { return nil }, true},
		{"a device that is not a whiteout", func(root string) error {
			return unix.Mknod(filepath.Join(root, "fs/etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		}, true},
		{"a user xattr", func(root string) error {
			return unix.Setxattr(filepath.Join(root, "fs/etc/ssl"), "user.note", []byte("x"), 0)
		}, true},
		{"a whiteout", func(root string) error {
			return unix.Mknod(filepath.Join(root, "fs/etc/ssl/gone"), unix.S_IFCHR, 0)
		}, false},
		{"an opaque folder", func(root string) error {
			return unix.Setxattr(filepath.Join(root, "fs/etc/ssl"), "trusted.overlay.opaque", []byte("y"), 0)
		}, false},
		{"an opaque folder as a user namespace marks it", func(root string) error {
			return unix.Setxattr(filepath.Join(root, "fs/etc/ssl"), "user.overlay.opaque", []byte("y"), 0)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.mark)
			out, err := exec.Command("bash", "-c", plainSnapshot+`plain_snapshot "$1"`, "bash", root).CombinedOutput()
			if tc.plain && err != nil {
				t.Fatalf("plain_snapshot %s: %v\n%s", tc.name, err, out)
			}
			if !tc.plain && (err == nil || !strings.Contains(string(out), root)) {
				t.Fatalf("plain_snapshot kept %s (err %v): want a failure naming %s\n%s", tc.name, err, root, out)
			}
		})
	}
}
