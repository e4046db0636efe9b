package site

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
)

// runPageDir is a run's directory in the site, relative to its root.
func runPageDir(name string) string { return "runs/" + name }

// copyPage copies the run's report page, with what it links to
// (summary.json and plots/*.png), into dst.
func copyPage(run results.Run, dst string) error {
	files := []string{"index.html", "summary.json"}
	plots, err := filepath.Glob(filepath.Join(run.PlotsDir(), "*.png"))
	if err != nil {
		return err
	}
	for _, p := range plots {
		files = append(files, filepath.Join("plots", filepath.Base(p)))
	}
	for _, f := range files {
		if err := results.CopyFile(filepath.Join(dst, f), filepath.Join(run.Dir, f)); err != nil {
			return err
		}
	}
	return nil
}

// writePage renders a run's report page from its analysis into dst, as
// `labrun report` would into the run directory.
func writePage(dst string, s report.Summary, a *analyze.Analysis) error {
	figs, err := report.Draw(report.Figures(a))
	if err != nil {
		return err
	}
	if err := report.WriteFigures(results.Run{Dir: dst}, figs); err != nil {
		return err
	}
	if err := results.WriteJSON(filepath.Join(dst, "summary.json"), s); err != nil {
		return err
	}
	html, err := report.HTML(s, figs)
	if err != nil {
		return err
	}
	return results.WriteFile(filepath.Join(dst, "index.html"), html)
}

// The site's navigation in a run page sits between these markers, so a later
// build replaces it (new cells get a history) instead of adding another.
var (
	navStart = []byte("<!-- labrun-site:nav -->")
	navEnd   = []byte("<!-- /labrun-site:nav -->")
)

// withNav puts nav into a report page: in place of an earlier one, else
// right after <body>.
func withNav(page, nav []byte) []byte {
	block := append(append(append([]byte{}, navStart...), nav...), navEnd...)
	if i := bytes.Index(page, navStart); i >= 0 {
		if j := bytes.Index(page[i:], navEnd); j >= 0 {
			return slicesConcat(page[:i], block, page[i+j+len(navEnd):])
		}
	}
	if i := bytes.Index(page, []byte("<body>")); i >= 0 {
		i += len("<body>")
		return slicesConcat(page[:i], []byte("\n"), block, page[i:])
	}
	return slicesConcat(block, page)
}

func slicesConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// setRunNav writes nav into the run page at path.
func setRunNav(path string, nav []byte) error {
	page, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("run page: %w", err)
	}
	return results.WriteFile(path, withNav(page, nav))
}
