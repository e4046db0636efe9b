package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"labrun.dev/labrun/pkg/results"
)

// Options say what to build the site from and where.
type Options struct {
	// Inputs are run directories and folders of runs (results/).
	Inputs []string
	// Out is the site directory. When it holds a site already, the runs of
	// its index.json are kept (their pages are there) and the inputs added.
	Out string
	// Now stamps the index; nil means time.Now.
	Now func() time.Time
	// Progress gets one line per run read; nil discards them.
	Progress io.Writer
}

// Result is what a build did.
type Result struct {
	Index *Index
	// Read are the names of the runs read from the inputs (broken ones
	// included), Kept those carried over from the earlier index.
	Read, Kept []string
	// Notes say what was skipped and why (duplicates, other sites).
	Notes []string
	// Latest is the data of latest.html.
	Latest LatestPage
}

// Build reads every run of the inputs, one at a time (a run's analysis is
// dropped once its numbers are in the index: memory grows with runs × cells,
// never with samples), merges them into the site's earlier index, and writes
// every page, then index.json last: a build that fails midway leaves the
// earlier index in place.
func Build(ctx context.Context, opt Options) (*Result, error) {
	if opt.Out == "" {
		return nil, errors.New("site: no output directory")
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	progress := opt.Progress
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	indexPath := filepath.Join(opt.Out, IndexFile)
	idx, ok, err := ReadIndex(indexPath)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if !ok {
		idx = &Index{}
	}
	cands, notes, err := discover(opt.Inputs, opt.Out)
	if err != nil {
		return nil, err
	}
	res.Notes = notes
	read := readRuns(ctx, cands, opt.Out, progress)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, r := range read {
		res.Read = append(res.Read, r.Name)
	}
	fresh := map[string]bool{}
	for _, r := range read {
		fresh[r.Name] = true
	}
	for _, r := range idx.Runs {
		if !fresh[r.Name] {
			res.Kept = append(res.Kept, r.Name)
		}
	}
	idx.Schema, idx.Generated = Schema, now().UTC()
	idx.Merge(read)
	checkKeptPages(idx, opt.Out, fresh)
	failed := compareLatest(idx, idx.Generated)
	for _, s := range slices.Sorted(maps.Keys(failed)) {
		fmt.Fprintf(progress, "scenario %s: no comparison of its latest runs: %s\n", s, failed[s])
	}
	res.Index = idx
	if res.Latest, err = writePages(opt.Out, idx, res.Notes, failed); err != nil {
		return nil, err
	}
	if err := results.WriteJSON(indexPath, idx); err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	return res, nil
}

// readRuns reads the candidates on as many goroutines as there are CPUs (at
// most 4: each holds one run's summary or analysis), in the order given.
func readRuns(ctx context.Context, cands []candidate, out string, progress io.Writer) []Run {
	runs := make([]Run, len(cands))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, min(4, runtime.GOMAXPROCS(0)))
	for i, c := range cands {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := readRun(c, out)
			runs[i] = r
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !r.OK():
				fmt.Fprintf(progress, "%s: listed, not shown: %s\n", r.Name, r.Problem)
			case r.Note != "":
				fmt.Fprintf(progress, "%s: %s (%s)\n", r.Name, r.Source, r.Note)
			default:
				fmt.Fprintf(progress, "%s: %s\n", r.Name, r.Source)
			}
		})
	}
	wg.Wait()
	return runs
}

// checkKeptPages drops the link to a kept run's page that is no longer in
// the site (removed by hand), saying so, so the site never links nowhere.
func checkKeptPages(idx *Index, out string, fresh map[string]bool) {
	for i := range idx.Runs {
		r := &idx.Runs[i]
		if fresh[r.Name] || r.Page == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(out, r.Page)); err != nil {
			r.Page = ""
			r.Note = strings.TrimPrefix(r.Note+"; its page is missing from the site (run labrun site on its directory again)", "; ")
		}
	}
}

// writePages writes index.html, claims.html, every cell history with its
// figures, and the site navigation into every run page.
func writePages(out string, idx *Index, notes []string, failed map[string]string) (LatestPage, error) {
	b := base{Generated: idx.Generated, Schema: Schema}
	if err := writeFile(filepath.Join(out, FaviconFile), favicon()); err != nil {
		return LatestPage{}, err
	}
	hists := Histories(idx)
	html, err := render("index.html.tmpl", indexPage{base: b, Runs: idx.Runs, Histories: hists, Notes: notes, MinHistoryRuns: MinHistoryRuns})
	if err != nil {
		return LatestPage{}, err
	}
	if err := writeFile(filepath.Join(out, "index.html"), html); err != nil {
		return LatestPage{}, err
	}
	html, err = render("claims.html.tmpl", newClaimsPage(b, NewGrid(idx)))
	if err != nil {
		return LatestPage{}, err
	}
	if err := writeFile(filepath.Join(out, "claims.html"), html); err != nil {
		return LatestPage{}, err
	}
	if err := writeHistories(out, b, hists); err != nil {
		return LatestPage{}, err
	}
	latest, err := NewLatest(idx, hists, failed)
	if err != nil {
		return latest, err
	}
	if html, err = render("latest.html.tmpl", latestPage{base: b, LatestPage: latest}); err != nil {
		return latest, err
	}
	if err := writeFile(filepath.Join(out, LatestFile), html); err != nil {
		return latest, err
	}
	return latest, writeRunNavs(out, idx, hists)
}

// writeHistories writes cells/ anew: a cell page and its figures per
// history, and nothing else (a page of an earlier build whose cell is gone
// would be linked from nowhere).
func writeHistories(out string, b base, hists []History) error {
	dir := filepath.Join(out, "cells")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("site: clear cells/: %w", err)
	}
	b.Root = "../"
	for _, h := range hists {
		labels := xLabels(h)
		var figs []pageFigure
		for _, p := range Panels(h) {
			svg, err := drawPanel(p, labels)
			if err != nil {
				return fmt.Errorf("site: cell %s: %w", h.Cell, err)
			}
			file := figureFile(h, p)
			if err := writeFile(filepath.Join(out, file), svg); err != nil {
				return err
			}
			figs = append(figs, pageFigure{File: file, Title: p.Title, Caption: p.Caption,
				Width: int(figWidth.Dots(96)), Height: int(figHeight.Dots(96))})
		}
		html, err := render("cell.html.tmpl", newCellPage(b, h, figs))
		if err != nil {
			return fmt.Errorf("site: cell %s: %w", h.Cell, err)
		}
		if err := writeFile(filepath.Join(out, h.Page), html); err != nil {
			return err
		}
	}
	return nil
}

// writeRunNavs puts the site navigation, with links to the histories of
// the run's cells, into every run page, new or kept.
func writeRunNavs(out string, idx *Index, hists []History) error {
	byCell := map[string]History{}
	for _, h := range hists {
		byCell[h.Cell] = h
	}
	for _, r := range idx.Runs {
		if r.Page == "" {
			continue
		}
		nav := runNav{Total: len(r.Cells)}
		for _, c := range r.Cells {
			if h, ok := byCell[c.ID]; ok {
				nav.Cells = append(nav.Cells, History{Cell: h.Cell, Page: h.Page})
			}
		}
		html, err := render("runnav.html.tmpl", nav)
		if err != nil {
			return err
		}
		src := filepath.Join(out, r.Page)
		if r.pageSource != "" {
			src = r.pageSource
		}
		if err := setRunNav(filepath.Join(out, r.Page), src, html); err != nil {
			return fmt.Errorf("site: run %s: %w", r.Name, err)
		}
	}
	return nil
}
