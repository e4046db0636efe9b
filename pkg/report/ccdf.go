package report

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// retryTimeout is glibc's and musl's default resolver timeout: a lost query
// costs a multiple of it.
const retryTimeout = 5.0 // s

func ccdfPlot(c CCDF, styles seriesStyles) (*plot.Plot, []legendEntry, error) {
	p := plot.New()
	p.Title.Text = "Lookup latency, " + c.Backend + " back end"
	p.Title.Padding = vg.Points(12) // clear of the top tick label
	p.X.Label.Text = "lookup took at least (log scale)"
	p.Y.Label.Text = "share of lookups (log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = unitTicks{format: formatSeconds}
	p.Y.Tick.Marker = unitTicks{format: formatShare}
	p.Add(plotter.NewGrid())
	minX, maxX, minY := math.Inf(1), 2*retryTimeout, 1.0
	for _, s := range c.Series {
		for _, pt := range s.Points {
			minX, maxX, minY = math.Min(minX, pt.X), math.Max(maxX, pt.X), math.Min(minY, pt.Y)
		}
	}
	if math.IsInf(minX, 1) {
		minX = 1e-4
	}
	minY = decadeBelow(minY)
	var legend []legendEntry
	for _, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys(s.Points))
		if err != nil {
			return nil, nil, fmt.Errorf("ccdf %s: %w", s.Label, err)
		}
		l.Color, l.Dashes = styles.style(s.Label)
		// The run's first series (in plan order, usually the baseline none)
		// is drawn widest, so a mitigation that changes nothing lies on it
		// without hiding it.
		l.Width = vg.Points(1.5)
		if styles[s.Label] == 0 {
			l.Width = vg.Points(3.5)
		}
		p.Add(l)
		legend = append(legend, legendEntry{s.Label, l})
	}
	maxX *= 1.3
	if err := addTimeoutMarkers(p, minY, maxX); err != nil {
		return nil, nil, err
	}
	p.X.Min, p.X.Max = decadeBelow(minX), maxX
	// A share is at most 1: the axis stops there.
	p.Y.Min, p.Y.Max = minY, 1
	return p, legend, nil
}

// addTimeoutMarkers draws a dashed, labelled vertical line at every multiple
// of the retry timeout the axis shows: where the race's plateau drops.
func addTimeoutMarkers(p *plot.Plot, minY, maxX float64) error {
	var at plotter.XYs
	var texts []string
	for x := retryTimeout; x <= maxX; x += retryTimeout {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: minY}, {X: x, Y: 1}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 90}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		at = append(at, plotter.XY{X: x, Y: minY})
		texts = append(texts, formatSeconds(x))
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: at, Labels: texts})
	if err != nil {
		return err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font.Size = vg.Points(8)
		labels.TextStyle[i].XAlign = draw.XRight
		labels.TextStyle[i].Color = color.Gray{Y: 60}
	}
	labels.Offset = vg.Point{X: -vg.Points(2), Y: vg.Points(2)}
	p.Add(labels)
	return nil
}

func decadeBelow(v float64) float64 { return math.Pow(10, math.Floor(math.Log10(v))) }

// unitTicks are log ticks at every power of ten, labelled in the axis's
// unit, with unlabelled minor ticks at 2…9 × each power.
type unitTicks struct{ format func(float64) string }

func (u unitTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		decade := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * decade
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 {
				t.Label = u.format(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// formatSeconds writes a duration given in seconds in the unit that keeps it
// a plain number: 10 µs, 1 ms, 100 ms, 5 s.
func formatSeconds(s float64) string {
	switch {
	case s >= 1:
		return trim(s) + " s"
	case s >= 1e-3:
		return trim(s*1e3) + " ms"
	default:
		return trim(s*1e6) + " µs"
	}
}

// formatShare writes a share as a percentage: 100 %, 1 %, 0.01 %.
func formatShare(v float64) string { return trim(100*v) + " %" }

func trim(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func xys(pts []XY) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i] = plotter.XY{X: p.X, Y: p.Y}
	}
	return out
}
