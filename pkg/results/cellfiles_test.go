package results

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCopyCell: a cell's files, and only they, are linked or copied; hidden
// temporaries and other cells stay behind; nothing is overwritten.
func TestCopyCell(t *testing.T) {
	src, err := Create(t.TempDir(), "src")
	if err != nil {
		t.Fatal(err)
	}
	const cell = "a_glibc_none"
	files := map[string]string{
		"raw/a_glibc_none/probe-0.jsonl":               "samples",
		"raw/a_glibc_none/.probe-1.jsonl.tmp-1":        "a crashed write",
		"counters/a_glibc_none.json":                   "{}",
		"captures/a_glibc_none/probe-0.pcap":           "pcap",
		"captures/a_glibc_none.json":                   "{}",
		"status/a_glibc_none.json":                     "{}",
		"status/a_glibc_none_2.json":                   "another cell",
		"raw/a_glibc_none-x/probe-0.jsonl":             "another cell",
		"captures/a_glibc_none/.hidden/probe-9.pcap":   "hidden",
		"captures/a_glibc_none/nested/probe-1.pcap":    "nested",
		"summary.json":                                 "not a cell's",
		"counters/.a_glibc_none.json.tmp-2":            "a crashed write",
		"captures/a_glibc_none.json.tmp/whatever.json": "not a cell's",
	}
	for rel, data := range files {
		p := filepath.Join(src.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"captures/a_glibc_none.json",
		"captures/a_glibc_none/nested/probe-1.pcap",
		"captures/a_glibc_none/probe-0.pcap",
		"counters/a_glibc_none.json",
		"raw/a_glibc_none/probe-0.jsonl",
		"status/a_glibc_none.json",
	}
	got, err := src.CellFiles(cell)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("CellFiles = %v, %v; want %v", got, err, want)
	}
	if none, err := src.CellFiles("absent"); err != nil || len(none) != 0 {
		t.Errorf("CellFiles(absent) = %v, %v", none, err)
	}
	if _, err := src.CellFiles("../x"); err == nil {
		t.Error("CellFiles accepted a cell name that leaves the run")
	}
	for _, link := range []bool{true, false} {
		dst := RunDir{Dir: filepath.Join(t.TempDir(), "dst")}
		tr, err := CopyCell(dst, src, cell, link)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Linked+tr.Copied != len(want) || (link && tr.Linked == 0) || (!link && tr.Linked != 0) {
			t.Errorf("link=%v: %+v", link, tr)
		}
		for _, rel := range want {
			data, err := os.ReadFile(filepath.Join(dst.Dir, rel))
			if err != nil || string(data) != files[rel] {
				t.Errorf("link=%v: %s = %q, %v", link, rel, data, err)
			}
		}
		var all []string
		filepath.WalkDir(dst.Dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dst.Dir, p)
				all = append(all, rel)
			}
			return nil
		})
		slices.Sort(all)
		if !slices.Equal(all, want) {
			t.Errorf("link=%v: destination holds %v", link, all)
		}
		if _, err := CopyCell(dst, src, cell, link); err == nil || !strings.Contains(err.Error(), "exists already") {
			t.Errorf("copying a cell twice: %v", err)
		}
	}
}
