package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// legendEntry is one line of a figure's legend.
type legendEntry struct {
	name  string
	thumb plot.Thumbnailer
}

// legendPlace is where render puts a figure's legend: gonum draws legends
// inside the data area, where they hide bars and lines, so it goes outside.
type legendPlace int

const (
	legendRight legendPlace = iota // a column right of the axes: a few short names
	legendBelow                    // rows under the axes: as wide as the figure, for long cell labels
)

// render draws p as a PNG of the given height, plus the rows of a legend
// placed below.
func render(p *plot.Plot, legend []legendEntry, place legendPlace, file string, height vg.Length) (Figure, error) {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(10)
	var width vg.Length
	for _, e := range legend {
		l.Add(e.name, e.thumb)
		width = max(width, l.TextStyle.Width(e.name))
	}
	width += l.ThumbnailWidth + 2*l.TextStyle.Font.Size
	rows := vg.Length(len(legend)) * l.TextStyle.Font.Size * 1.2
	if place == legendBelow && len(legend) > 0 {
		height += rows + l.TextStyle.Font.Size
	}
	img := vgimg.New(figWidth, height)
	dc := draw.New(img)
	plotArea := dc
	switch {
	case len(legend) == 0:
	case place == legendRight:
		plotArea = draw.Crop(dc, 0, -width, 0, 0)
		// Start the legend level with the top of the axes, below the title.
		top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
		l.Draw(draw.Crop(dc, figWidth-width+l.TextStyle.Font.Size, 0, 0, -top))
	default:
		below := rows + l.TextStyle.Font.Size
		plotArea = draw.Crop(dc, 0, 0, below, 0)
		l.Draw(draw.Crop(dc, vg.Inch, 0, 0, -(height - below)))
	}
	drawPlot(p, plotArea)
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return Figure{}, fmt.Errorf("draw %s: %w", file, err)
	}
	return Figure{File: file, png: b.Bytes()}, nil
}

// drawPlot draws p on c, but draws the label of a logarithmic y axis
// itself: gonum reserves room for that label around the linear midpoint of
// the axis, near the top on a log scale, leaving a gap under the title.
func drawPlot(p *plot.Plot, c draw.Canvas) {
	_, logY := p.Y.Scale.(plot.LogScale)
	if !logY || p.Y.Label.Text == "" {
		p.Draw(c)
		return
	}
	label := p.Y.Label
	p.Y.Label.Text = ""
	defer func() { p.Y.Label = label }()
	sty := label.TextStyle
	sty.Rotation = math.Pi / 2
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
	width := label.TextStyle.Height(label.Text) + label.Padding
	c.FillText(sty, vg.Point{X: c.Min.X, Y: (c.Min.Y + c.Max.Y) / 2}, label.Text)
	p.Draw(draw.Crop(c, width, 0, 0, 0))
}

// valueLabels writes each value's text at the end of its bar, so a bar of
// zero still says "0" and every bar its exact number.
// They take the bar's colour, darker, so a "0" says whose zero it is.
func valueLabels(xs []float64, texts []string, row func(i int) float64, dy vg.Length, bar color.Color) (*plotter.Labels, error) {
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xysOf(xs, row), Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = vg.Points(8)
		l.TextStyle[i].YAlign = draw.YCenter
		l.TextStyle[i].Color = darker(bar)
	}
	l.Offset = vg.Point{X: vg.Points(3), Y: dy}
	return l, nil
}

func xysOf(xs []float64, row func(i int) float64) plotter.XYs {
	out := make(plotter.XYs, len(xs))
	for i, x := range xs {
		out[i] = plotter.XY{X: x, Y: row(i)}
	}
	return out
}

func darker(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	scale := func(v uint32) uint8 { return uint8(v >> 8 * 6 / 10) }
	return color.RGBA{R: scale(r), G: scale(g), B: scale(b), A: 0xff}
}
