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

// copyPage copies what the run's report page links to (summary.json and
// plots/*.png) into dst; the page itself is written once, with the site's
// navigation, when every run is known (writeRunNavs).
func copyPage(run results.RunDir, dst string) error {
	files := []string{"summary.json"}
	plots, err := filepath.Glob(filepath.Join(run.PlotsDir(), "*.png"))
	if err != nil {
		return err
	}
	for _, p := range plots {
		files = append(files, filepath.Join("plots", filepath.Base(p)))
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(dst, f), filepath.Join(run.Dir, f)); err != nil {
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
	if err := report.WriteFigures(results.RunDir{Dir: dst}, figs); err != nil {
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

// setRunNav writes the page at src, with nav, to path (src is the run's
// own index.html for a run read now, else the page in the site).
func setRunNav(path, src string, nav []byte) error {
	page, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("run page: %w", err)
	}
	return writeFile(path, withNav(page, nav))
}
