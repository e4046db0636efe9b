package site

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// runMarkers are the entries that make a directory a run directory
// (docs/results-format.md); a directory with none of them is a folder of runs.
var runMarkers = []string{"scenario.yaml", "summary.json", "env.json", "status", "raw"}

// InputError is an input that is no run directory and no folder of runs: the
// user's to fix.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error { return &InputError{fmt.Errorf(format, args...)} }

// candidate is a directory to read as one run.
type candidate struct {
	Dir  string
	Name string
}

// discover turns the inputs into run directories: an input that is a run
// directory is one; any other directory is a results folder, each of whose
// subdirectories is one (a broken one is still listed, with its problem).
// Hidden directories, the site being built and other sites are skipped. A
// run name seen twice is read once, from the first input that had it; notes
// say what was skipped and why.
func discover(inputs []string, out string) (cands []candidate, notes []string, err error) {
	seen := map[string]string{}
	add := func(dir string) {
		name := filepath.Base(dir)
		if first, ok := seen[name]; ok {
			if !sameDir(first, dir) {
				notes = append(notes, fmt.Sprintf("run %s given twice: read %s, skipped %s", name, first, dir))
			}
			return
		}
		seen[name] = dir
		cands = append(cands, candidate{Dir: dir, Name: name})
	}
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, nil, inputErr("input %s: %w", in, err)
		}
		if !fi.IsDir() {
			return nil, nil, inputErr("input %s is a file; give run directories or folders of runs", in)
		}
		if sameDir(in, out) {
			return nil, nil, inputErr("input %s is the site being built (-o); give the runs' directories", in)
		}
		if isRunDir(in) {
			add(filepath.Clean(in))
			continue
		}
		entries, err := os.ReadDir(in)
		if err != nil {
			return nil, nil, inputErr("input %s: %w", in, err)
		}
		found := 0
		for _, e := range entries {
			dir := filepath.Join(in, e.Name())
			if strings.HasPrefix(e.Name(), ".") || !isDir(dir) {
				continue
			}
			if sameDir(dir, out) || isSite(dir) {
				notes = append(notes, fmt.Sprintf("skipped %s: a site, not a run", dir))
				continue
			}
			found++
			add(dir)
		}
		if found == 0 {
			return nil, nil, inputErr("input %s is neither a run directory (it has none of %s) nor a folder of them (it has no subdirectory)",
				in, strings.Join(runMarkers, ", "))
		}
	}
	return cands, notes, nil
}

func isRunDir(dir string) bool {
	return slices.ContainsFunc(runMarkers, func(m string) bool {
		_, err := os.Stat(filepath.Join(dir, m))
		return err == nil
	})
}

func isSite(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, IndexFile))
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// sameDir reports whether a and b are the same existing directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
