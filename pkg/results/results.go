// Package results is the on-disk layout of one run, results/<run>/:
//
//	scenario.yaml               the scenario as resolved (defaults filled in)
//	env.json                    host kernel, Docker, kind, Kubernetes, images, emulator
//	raw/<cell>/<pod>.jsonl      every probe's samples and its summary line (pkg/sample)
//	counters/<cell>.json        node counters before and after the cell
//	captures/<cell>/...         packet captures and their analysis (<cell>.json)
//	status/<cell>.json          complete | incomplete | not-run, with the reason
//	shard.json                  only in one shard of a sharded run: which, and its cells
//	envs/<run>.json             only in a merged run: each joined run's env.json
//	summary.json                the analysis (pkg/report writes it)
//	plots/*.png                 figures
//	index.html                  the report page
//	exports/                    the run in other tools' formats (pkg/export)
//
// The runner writes through RunDir; analysis and report read through it. Every
// file is written atomically (a temporary file renamed into place), so a
// reader never sees half a file, even after Ctrl-C, and no file is changed
// in place: a file may be hard-linked into another run (CopyCell).
//
// A merged run (labrun merge, pkg/merge) has this layout too, so everything
// that reads a run reads it unchanged. Its cells' files are the merged runs'
// (CellFiles, CopyCell); its env.json is still one Env, the merged runs' own
// joined (the earliest start, each other fact with their distinct values,
// every image, Extra[EnvMergedFrom] naming the runs), so that analysis,
// report, export and site, which read env.json as one Env, need no change;
// and each merged run's env.json is kept whole under envs/ (EnvsDir).
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// RunDir is one run's directory.
type RunDir struct{ Dir string }

// Open returns the run at dir, which must exist.
func Open(dir string) (RunDir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return RunDir{}, fmt.Errorf("open results: %w", err)
	}
	if !fi.IsDir() {
		return RunDir{}, fmt.Errorf("open results: %s is not a directory", dir)
	}
	return RunDir{Dir: dir}, nil
}

// Create makes the run directory root/name (and its parents).
func Create(root, name string) (RunDir, error) {
	if err := checkName("run", name); err != nil {
		return RunDir{}, err
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return RunDir{}, fmt.Errorf("create results: %w", err)
	}
	return RunDir{Dir: dir}, nil
}

// Name is the run's name: its directory's base name.
func (r RunDir) Name() string { return filepath.Base(r.Dir) }

func (r RunDir) ScenarioPath() string      { return filepath.Join(r.Dir, "scenario.yaml") }
func (r RunDir) EnvPath() string           { return filepath.Join(r.Dir, "env.json") }
func (r RunDir) SummaryPath() string       { return filepath.Join(r.Dir, "summary.json") }
func (r RunDir) IndexPath() string         { return filepath.Join(r.Dir, "index.html") }
func (r RunDir) PlotsDir() string          { return filepath.Join(r.Dir, "plots") }
func (r RunDir) RawDir(cell string) string { return filepath.Join(r.Dir, "raw", cell) }
func (r RunDir) CountersPath(cell string) string {
	return filepath.Join(r.Dir, "counters", cell+".json")
}
func (r RunDir) StatusPath(cell string) string  { return filepath.Join(r.Dir, "status", cell+".json") }
func (r RunDir) CapturesDir(cell string) string { return filepath.Join(r.Dir, "captures", cell) }
func (r RunDir) ExportsDir() string             { return filepath.Join(r.Dir, "exports") }

// EnvsDir holds, in a merged run only, each joined run's env.json as
// <run>.json (labrun merge).
func (r RunDir) EnvsDir() string { return filepath.Join(r.Dir, "envs") }

// CaptureSummaryPath is where the analysis of a cell's captures goes.
func (r RunDir) CaptureSummaryPath(cell string) string {
	return filepath.Join(r.Dir, "captures", cell+".json")
}

// RawPath is one probe pod's sample file.
func (r RunDir) RawPath(cell, pod string) string {
	return filepath.Join(r.RawDir(cell), pod+".jsonl")
}

// RawFiles lists a cell's sample files, sorted; none is not an error.
func (r RunDir) RawFiles(cell string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(r.RawDir(cell), "*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("list samples of %s: %w", cell, err)
	}
	slices.Sort(files)
	return files, nil
}

// checkName refuses names that would escape the run directory or hide files.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%s name %q cannot be a file name", what, name)
	}
	return nil
}

// WriteFile writes data to path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func WriteFile(path string, data []byte) error {
	f, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteJSON writes v as indented JSON to path atomically.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFile(path, append(data, '\n'))
}

// ReadJSON decodes path into v; unknown fields are an error, so a file written
// by a newer labrun is not misread silently.
func ReadJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// AtomicFile is a file that appears at its path only when committed.
type AtomicFile struct {
	*os.File
	path string
	done bool
}

// CreateAtomic opens a temporary file next to path (creating directories).
// Write to it, then Commit to put it in place or Abort to discard it.
func CreateAtomic(path string) (*AtomicFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &AtomicFile{File: f, path: path}, nil
}

// Commit syncs, closes and renames the file into place.
func (f *AtomicFile) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already closed", f.path)
	}
	f.done = true
	err := errors.Join(f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file; safe after Commit.
func (f *AtomicFile) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// CopyFile copies src to dst atomically (for captures and the scenario).
func CopyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := CreateAtomic(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Abort()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Commit()
}
