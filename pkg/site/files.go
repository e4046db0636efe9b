package site

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFile writes data to path through a temporary file renamed into place,
// so a reader of a site being rebuilt never sees half a page. Unlike
// results.WriteFile it does not fsync each file: a site can be rebuilt from
// its runs and index.json (which is synced, and written last), and a
// thousand fsyncs were most of the time of a build over 100 runs.
func writeFile(path string, data []byte) error {
	return writeFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeFrom(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = errors.Join(fill(f), f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// copyFile puts src at dst: a hard link where both are on one file system
// (a run's files are replaced by renames, never rewritten in place, so the
// site keeps the version it linked), else a copy.
func copyFile(dst, src string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	os.Remove(dst)
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	return writeFrom(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
