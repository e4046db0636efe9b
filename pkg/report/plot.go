package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

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
	for _, c := range fd.CCDFs {
		p, err := ccdfPlot(c)
		if err != nil {
			return nil, err
		}
		f, err := render(p, "ccdf-"+safeName(c.Backend)+".png", figHeight)
		if err != nil {
			return nil, err
		}
		f.Title = "Lookup latency, " + c.Backend
		f.Caption = "Share of lookups that took at least x seconds (log axes), one line per mitigation; the dashed lines mark 5 s and 10 s, the resolver's retry timeout and twice it."
		figs = append(figs, f)
	}
	if len(fd.SlowShare) > 0 {
		var bars []Bar
		for _, g := range fd.SlowShare {
			for _, b := range g.Bars {
				bars = append(bars, Bar{Label: g.Name + " " + b.Label, Cell: b.Cell, Value: 100 * b.Value})
			}
		}
		f, err := barFigure("share-ge-5s.png", "Lookups ≥ 5 s", "% of lookups", []BarGroup{{Name: "≥ 5 s", Bars: bars}})
		if err != nil {
			return nil, err
		}
		f.Caption = "Share of each cell's lookups that took 5 s or more."
		figs = append(figs, f)
	}
	if len(fd.Counters) > 0 {
		f, err := barFigure("counters.png", "Counter deltas per cell", "count (summed over nodes)", fd.Counters)
		if err != nil {
			return nil, err
		}
		f.Caption = "How much each counter grew during the cell: the kernel's insert_failed (clashes that dropped a packet) and clashres (clashes it resolved), and the race emulator's drops."
		figs = append(figs, f)
	}
	if len(fd.QueriesPerLookup) > 0 {
		f, err := barFigure("queries-per-lookup.png", "DNS queries per lookup (capture)", "queries", []BarGroup{{Name: "queries per lookup", Bars: fd.QueriesPerLookup}})
		if err != nil {
			return nil, err
		}
		f.Caption = "Queries seen on the wire per lookup: search-list expansion multiplies them."
		figs = append(figs, f)
	}
	return figs, nil
}

// WriteFigures writes figs under the run's plots/ directory and removes
// figures an earlier report drew that this one does not (a back end gone).
func WriteFigures(run results.Run, figs []Figure) error {
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

func ccdfPlot(c CCDF) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Lookup latency, " + c.Backend
	p.X.Label.Text = "lookup took at least (s)"
	p.Y.Label.Text = "share of lookups"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	minY, maxX := 1.0, 10.0
	for _, s := range c.Series {
		for _, pt := range s.Points {
			minY, maxX = math.Min(minY, pt.Y), math.Max(maxX, pt.X)
		}
	}
	minY = math.Pow(10, math.Floor(math.Log10(minY)))
	for i, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys(s.Points))
		if err != nil {
			return nil, fmt.Errorf("ccdf %s: %w", s.Label, err)
		}
		// Colours repeat after seven lines; dashes tell those apart.
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Label, l)
	}
	for _, x := range []float64{5, 10} {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: minY}, {X: x, Y: 1}})
		if err != nil {
			return nil, err
		}
		l.Color = color.Gray{Y: 90}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
	}
	// Lookups start near share 1 and fall within milliseconds, so the lower
	// left is empty: the legend goes there, with room made on the left.
	p.X.Min, p.X.Max = 1e-5, maxX*1.5
	p.Y.Min, p.Y.Max = minY, 1.2
	p.Legend.Left = true
	return p, nil
}

func xys(pts []XY) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i] = plotter.XY{X: p.X, Y: p.Y}
	}
	return out
}

// barFigure draws horizontal bars, one row per label, one colour per group.
func barFigure(file, title, unit string, groups []BarGroup) (Figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = unit
	p.Add(plotter.NewGrid())
	labels := make([]string, len(groups[0].Bars))
	for i, b := range groups[0].Bars {
		labels[i] = b.Label
	}
	rowHeight := vg.Points(14)
	barWidth := rowHeight / vg.Length(len(groups))
	for gi, g := range groups {
		vals := make(plotter.Values, len(g.Bars))
		for i, b := range g.Bars {
			vals[i] = b.Value
		}
		bc, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return Figure{}, fmt.Errorf("%s: %w", title, err)
		}
		bc.Horizontal = true
		bc.Color = plotutil.Color(gi)
		bc.LineStyle.Width = 0
		bc.Offset = vg.Length(gi-len(groups)/2)*barWidth + barWidth*vg.Length(1-len(groups)%2)/2
		p.Add(bc)
		if len(groups) > 1 {
			p.Legend.Add(g.Name, bc)
		}
	}
	p.NominalY(labels...)
	p.Y.Tick.Label.XAlign = draw.XRight
	p.Y.Min, p.Y.Max = -0.7, float64(len(labels))-0.3
	maxV := 0.0
	for _, g := range groups {
		for _, b := range g.Bars {
			maxV = math.Max(maxV, b.Value)
		}
	}
	// Room on the right for the legend, which gonum draws inside the axes.
	p.X.Min, p.X.Max = 0, math.Max(maxV, 1)*1.6
	p.Legend.Top = true
	height := max(figHeight/2, vg.Length(len(labels))*rowHeight*1.6+vg.Inch)
	f, err := render(p, file, height)
	f.Title = title
	return f, err
}

func render(p *plot.Plot, file string, height vg.Length) (Figure, error) {
	wt, err := p.WriterTo(figWidth, height, "png")
	if err != nil {
		return Figure{}, fmt.Errorf("draw %s: %w", file, err)
	}
	var b strings.Builder
	if _, err := wt.WriteTo(&b); err != nil {
		return Figure{}, fmt.Errorf("draw %s: %w", file, err)
	}
	return Figure{File: file, png: []byte(b.String())}, nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}
