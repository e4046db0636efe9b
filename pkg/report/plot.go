package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/results"
)

// Figure is a drawn figure: its file name under plots/ and what it shows.
type Figure struct {
	File    string
	Title   string
	Caption string
	png     []byte
}

// figure sizes
const (
	figWidth  = 8 * vg.Inch
	figHeight = 4.5 * vg.Inch
)

// Draw renders every figure of fd as PNG, in memory.
func Draw(fd FigureData) ([]Figure, error) {
	var figs []Figure
	styles := newSeriesStyles(fd.CCDFs)
	for _, c := range fd.CCDFs {
		p, legend, err := ccdfPlot(c, styles)
		if err != nil {
			return nil, err
		}
		f, err := render(p, legend, legendBelow, "ccdf-"+safeName(c.Backend)+".png", figHeight)
		if err != nil {
			return nil, err
		}
		f.Title = p.Title.Text
		f.Caption = "Share of lookups that took at least x (log axes), one line per cell. " +
			"The dashed lines mark multiples of 5 s, the resolver's retry timeout: the race shows as a plateau that drops there."
		figs = append(figs, f)
	}
	if len(fd.SlowShare) > 0 {
		var bars []Bar
		for _, g := range fd.SlowShare {
			for _, b := range g.Bars {
				bars = append(bars, Bar{Label: g.Name + " " + b.Label, Cell: b.Cell, Value: 100 * b.Value})
			}
		}
		axis := barAxis{label: "share of the cell's lookups that took ≥ 5 s (%)", max: 100, format: format.Percent}
		f, err := barFigure("share-ge-5s.png", "Lookups that took 5 s or more, per cell", axis, []BarGroup{{Name: "≥ 5 s", Bars: bars}})
		if err != nil {
			return nil, err
		}
		f.Caption = "Share of each cell's lookups that took 5 s or more: the height of the CCDF's plateau."
		figs = append(figs, f)
	}
	if len(fd.Counters) > 0 {
		axis := barAxis{label: "growth during the cell, summed over nodes", format: formatCount}
		f, err := barFigure("counters.png", "Kernel conntrack counters and emulator drops, per cell", axis, fd.Counters)
		if err != nil {
			return nil, err
		}
		f.Caption = "How much each counter grew during the cell. Kernel: insert_failed (clashes that dropped a packet) and clashres (clashes it resolved, nothing dropped). " +
			"Race emulator: the packets it dropped to imitate an older kernel; n/a where it did not run."
		figs = append(figs, f)
	}
	if len(fd.QueriesPerLookup) > 0 {
		axis := barAxis{label: "DNS queries on the wire per lookup", format: formatRatio}
		f, err := barFigure("queries-per-lookup.png", "DNS queries per lookup (from the capture)", axis, []BarGroup{{Name: "queries per lookup", Bars: fd.QueriesPerLookup}})
		if err != nil {
			return nil, err
		}
		f.Caption = "Queries seen on the wire per lookup: search-list expansion (ndots:5) multiplies them; 2 is one A and one AAAA."
		figs = append(figs, f)
	}
	return figs, nil
}

// WriteFigures writes figs under the run's plots/ directory and removes
// figures an earlier report drew that this one does not (a back end gone).
func WriteFigures(run results.RunDir, figs []Figure) error {
	keep := map[string]bool{}
	for _, f := range figs {
		if err := results.WriteFile(filepath.Join(run.PlotsDir(), f.File), f.png); err != nil {
			return err
		}
		keep[f.File] = true
	}
	old, err := filepath.Glob(filepath.Join(run.PlotsDir(), "*.png"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if !keep[filepath.Base(f)] {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("remove stale figure: %w", err)
			}
		}
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}
