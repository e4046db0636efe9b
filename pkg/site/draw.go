package site

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"labrun.dev/labrun/pkg/report"
)

// Figure size: SVG, so it scales (and draws 25 times faster than PNG: a
// site of 40 cells has 160 figures).
const (
	figWidth  = 9 * vg.Inch
	figHeight = 3.2 * vg.Inch
)

// The figures' text is laid out with Liberation Sans's metrics and shown
// with the reader's fonts: Liberation Sans where installed, else Arial or
// Helvetica, which have the same metrics.
const (
	fontVariant = "Sans"
	svgFamily   = "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"
)

// legendColumn is the legend's width right of the axes: the longest trend
// name ("kernel insert_failed") with its thumbnail, and room for a fallback
// font a little wider than the metrics drawn with.
const legendColumn = 1.9 * vg.Inch

// useSans sets every text style of p to the sans-serif face.
func useSans(p *plot.Plot) {
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font} {
		f.Variant = fontVariant
	}
}

// trendColor gives the counters the colours of the run reports' counter
// figure, and other trends the plot palette in order.
func trendColor(name string, i int) color.Color {
	switch name {
	case report.GroupEmulatorDropped, report.GroupInsertFailed, report.GroupClashResolved:
		return report.CounterColor(name)
	}
	return plotutil.Color(i)
}

// drawPanel renders p as SVG, x labelled by xLabels (one per history point).
func drawPanel(p Panel, xLabels []string) ([]byte, error) {
	pl := plot.New()
	useSans(pl)
	pl.Title.Text = p.Title
	pl.Y.Label.Text = p.YLabel
	pl.X.Label.Text = "run (oldest left)"
	pl.X.Tick.Marker = runTicks(xLabels)
	pl.X.Min, pl.X.Max = -0.5, float64(len(xLabels))-0.5
	pl.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range p.Trends {
		for _, pt := range t.Points {
			lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
			if pt.Low != nil {
				lo, hi = math.Min(lo, *pt.Low), math.Max(hi, *pt.High)
			}
		}
	}
	if p.RefY != 0 {
		lo, hi = math.Min(lo, p.RefY), math.Max(hi, p.RefY)
	}
	logY := p.LogY || (lo > 0 && hi/lo > 50) // a ratio of 1000 and one of 1 on one axis
	if logY && lo <= 0 {
		logY = false // a zero has no place on a log axis
	}
	if logY {
		pl.Y.Scale, pl.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		pl.Y.Min, pl.Y.Max = lo/1.5, hi*1.5
	} else {
		pl.Y.Min, pl.Y.Max = math.Min(0, lo), hi*1.1
		if pl.Y.Max <= pl.Y.Min {
			pl.Y.Max = pl.Y.Min + 1
		}
	}
	if p.RefY != 0 {
		ref, err := plotter.NewLine(plotter.XYs{{X: pl.X.Min, Y: p.RefY}, {X: pl.X.Max, Y: p.RefY}})
		if err != nil {
			return nil, err
		}
		ref.Color, ref.Dashes = color.Gray{Y: 90}, []vg.Length{vg.Points(4), vg.Points(3)}
		pl.Add(ref)
	}
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = vg.Points(10)
	legend.TextStyle.Font.Variant = fontVariant
	// One legend width for every panel, so that the runs line up from one
	// figure to the next on the page.
	legendWidth := legendColumn
	for i, t := range p.Trends {
		xys := make(plotter.XYs, len(t.Points))
		var errs plotter.YErrors
		for j, pt := range t.Points {
			xys[j] = plotter.XY{X: float64(pt.X), Y: pt.Y}
			if pt.Low != nil {
				errs = append(errs, struct{ Low, High float64 }{pt.Y - *pt.Low, *pt.High - pt.Y})
			}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", p.Title, t.Name, err)
		}
		c := trendColor(t.Name, i)
		line.Color, points.Color = c, c
		line.Width = vg.Points(1.5)
		points.Shape = plotutil.Shape(i)
		points.Radius = vg.Points(3)
		pl.Add(line, points)
		if len(errs) == len(xys) {
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{xys, errs})
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", p.Title, t.Name, err)
			}
			eb.Color = c
			pl.Add(eb)
		}
		legend.Add(t.Name, line, points)
	}
	canvas := vgsvg.New(figWidth, figHeight)
	dc := draw.New(canvas)
	pl.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	top := pl.Title.TextStyle.Height(pl.Title.Text) + pl.Title.Padding
	legend.Top, legend.Left = true, true
	legend.Draw(draw.Crop(dc, figWidth-legendWidth+legend.TextStyle.Font.Size, 0, 0, -top))
	var b bytes.Buffer
	if _, err := canvas.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("draw %s: %w", p.Title, err)
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("font-family:Liberation Sans;"), []byte(svgFamily)), nil
}

// runTicks labels the runs along x: every run when they are few, else
// evenly spaced ones, so labels never overlap.
type runTicks []string

func (r runTicks) Ticks(lo, hi float64) []plot.Tick {
	step := max(1, (len(r)+7)/8)
	var ticks []plot.Tick
	for i := range r {
		t := plot.Tick{Value: float64(i)}
		if i%step == 0 || i == len(r)-1 && len(r) <= 8 {
			t.Label = r[i]
		}
		ticks = append(ticks, t)
	}
	return ticks
}
