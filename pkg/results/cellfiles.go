package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// CellFiles lists the files that hold one cell, relative to the run
// directory and sorted: raw/<cell>/..., counters/<cell>.json,
// captures/<cell>/..., captures/<cell>.json and status/<cell>.json, those
// that exist. Hidden files (an atomic write's temporary, left by a crash)
// are not the cell's.
func (r RunDir) CellFiles(cell string) ([]string, error) {
	if err := checkName("cell", cell); err != nil {
		return nil, err
	}
	var files []string
	for _, dir := range []string{r.RawDir(cell), r.CapturesDir(cell)} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				rel, err := filepath.Rel(r.Dir, path)
				if err != nil {
					return err
				}
				files = append(files, rel)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list files of cell %s: %w", cell, err)
		}
	}
	for _, path := range []string{r.CountersPath(cell), r.CaptureSummaryPath(cell), r.StatusPath(cell)} {
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list files of cell %s: %w", cell, err)
		}
		if fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(r.Dir, path)
			files = append(files, rel)
		}
	}
	slices.Sort(files)
	return files, nil
}

// Transfer counts the files CopyCell hard-linked and those it copied.
type Transfer struct{ Linked, Copied int }

// Add adds t2's counts to t's.
func (t *Transfer) Add(t2 Transfer) { t.Linked, t.Copied = t.Linked+t2.Linked, t.Copied+t2.Copied }

// CopyCell puts the files of one cell of src (CellFiles) into dst at the
// same paths: hard-linked when link is set and the two are on one file
// system, else copied. Linking is safe because nothing in labrun changes a
// file in place (every write is a new file renamed over the old one), so a
// later write in either run never reaches the other. An existing file at a
// destination is an error: a run's cell is never overwritten.
func CopyCell(dst, src RunDir, cell string, link bool) (Transfer, error) {
	var t Transfer
	files, err := src.CellFiles(cell)
	if err != nil {
		return t, err
	}
	for _, rel := range files {
		from, to := filepath.Join(src.Dir, rel), filepath.Join(dst.Dir, rel)
		if _, err := os.Lstat(to); err == nil {
			return t, fmt.Errorf("copy cell %s: %s exists already in %s", cell, rel, dst.Dir)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return t, fmt.Errorf("copy cell %s: %w", cell, err)
		}
		if link {
			if err := os.Link(from, to); err == nil {
				t.Linked++
				continue
			}
			// Another file system, or one without hard links: copy.
		}
		if err := CopyFile(to, from); err != nil {
			return t, fmt.Errorf("copy cell %s: %w", cell, err)
		}
		t.Copied++
	}
	return t, nil
}
