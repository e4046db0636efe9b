package report

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// barAxis is what a bar figure's value axis shows.
type barAxis struct {
	label string
	// max caps the axis (100 for a percentage); 0 leaves it to the data.
	max    float64
	format func(float64) string
}

// barFigure draws horizontal bars, one row per label in the order given
// (first on top, as in the cells table), one colour per group, the groups of
// a row stacked in legend order, each bar labelled with its value.
func barFigure(file, title string, axis barAxis, groups []BarGroup) (Figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = axis.label
	p.Add(plotter.NewGrid())
	rows := len(groups[0].Bars)
	labels := make([]string, rows)
	for i, b := range groups[0].Bars {
		labels[rows-1-i] = b.Label
	}
	row := func(i int) float64 { return float64(rows - 1 - i) }
	barWidth := vg.Points(12)
	var legend []legendEntry
	maxV := 0.0
	for gi, g := range groups {
		vals := make(plotter.Values, rows)
		xs := make([]float64, rows)
		texts := make([]string, rows)
		for i, b := range g.Bars {
			vals[rows-1-i] = b.Value
			xs[i], texts[i] = b.Value, axis.format(b.Value)
			if b.NotApplicable {
				texts[i] = "n/a"
			}
			maxV = math.Max(maxV, b.Value)
		}
		bc, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return Figure{}, fmt.Errorf("%s: %w", title, err)
		}
		bc.Horizontal = true
		bc.Color = groupColor(g.Name, gi)
		bc.LineStyle.Width = 0
		// Group 0 on top of its row, as it is on top of the legend.
		bc.Offset = vg.Length(float64(len(groups)-1)/2-float64(gi)) * barWidth
		p.Add(bc)
		vl, err := valueLabels(xs, texts, row, bc.Offset, bc.Color)
		if err != nil {
			return Figure{}, fmt.Errorf("%s: %w", title, err)
		}
		p.Add(vl)
		if len(groups) > 1 {
			legend = append(legend, legendEntry{g.Name, bc})
		}
	}
	p.NominalY(labels...)
	p.Y.Tick.Label.XAlign = draw.XRight
	p.Y.Min, p.Y.Max = -0.6, float64(rows)-0.4
	p.X.Min, p.X.Max = 0, math.Max(maxV*1.1, 1)
	if axis.max > 0 {
		p.X.Max = math.Min(p.X.Max, axis.max)
	}
	rowHeight := barWidth*vg.Length(len(groups)) + vg.Points(8)
	height := max(figHeight/2, vg.Length(rows)*rowHeight+vg.Inch)
	f, err := render(p, legend, legendRight, file, height)
	f.Title = title
	return f, err
}

func formatCount(v float64) string { return fmt.Sprintf("%.0f", v) }

func formatRatio(v float64) string { return fmt.Sprintf("%.2f", v) }
