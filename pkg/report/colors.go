package report

import (
	"image/color"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The counters figure gives each counter one colour in every run: drops are
// warm (the kernel's dark red, the emulator's orange), resolved clashes cool.
var counterColors = map[string]color.Color{
	GroupInsertFailed:    color.RGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff},
	GroupClashResolved:   color.RGBA{R: 0x43, G: 0x93, B: 0xc3, A: 0xff},
	GroupEmulatorDropped: color.RGBA{R: 0xf4, G: 0xa5, B: 0x82, A: 0xff},
}

// CounterColor is the colour of a counter group (GroupInsertFailed,
// GroupClashResolved, GroupEmulatorDropped) in every figure, so the site's
// history figures match the run reports.
func CounterColor(group string) color.Color { return groupColor(group, 0) }

func groupColor(name string, i int) color.Color {
	if c, ok := counterColors[name]; ok {
		return c
	}
	return plotutil.Color(i)
}

// seriesStyles gives every series label (a mitigation, with the axes that
// tell cells of one back end apart) one colour, and a dash past the palette,
// across all of a run's latency figures, in order of first appearance: "none"
// looks the same on every back end's figure.
type seriesStyles map[string]int

func newSeriesStyles(ccdfs []CCDF) seriesStyles {
	m := seriesStyles{}
	for _, c := range ccdfs {
		for _, s := range c.Series {
			if _, ok := m[s.Label]; !ok {
				m[s.Label] = len(m)
			}
		}
	}
	return m
}

func (m seriesStyles) style(label string) (color.Color, []vg.Length) {
	i := m[label]
	return plotutil.Color(i), plotutil.Dashes(i / len(plotutil.DefaultColors))
}
