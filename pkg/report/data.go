// Package report turns an analysis into what people read: summary.json (a
// versioned schema), figures drawn with gonum/plot, and a self-contained
// index.html. The data behind each figure is computed apart from drawing it,
// so tests check numbers, not pixels.
package report

import (
	"strings"

	"labrun.dev/labrun/pkg/analyze"
)

// XY is one point of a line.
type XY struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Series is one line of a figure.
type Series struct {
	Label  string `json:"label"`
	Cell   string `json:"cell"`
	Points []XY   `json:"points"`
}

// CCDF is the latency figure of one back end: for each measured cell, the
// share of lookups that took at least x seconds.
type CCDF struct {
	Backend string   `json:"backend"`
	Series  []Series `json:"series"`
}

// Bar is one bar of a bar figure.
type Bar struct {
	Label string  `json:"label"`
	Cell  string  `json:"cell"`
	Value float64 `json:"value"`
	// NotApplicable marks a bar with nothing to measure (the emulator's
	// drops in a cell it did not run in): drawn "n/a", not "0".
	NotApplicable bool `json:"not_applicable,omitempty"`
}

// The counters figure's groups, in the order they are drawn.
const (
	GroupInsertFailed    = "kernel insert_failed"
	GroupClashResolved   = "kernel clashres"
	GroupEmulatorDropped = "emulator dropped"
)

// BarGroup is one named set of bars (one colour), aligned on the same labels.
type BarGroup struct {
	Name string `json:"name"`
	Bars []Bar  `json:"bars"`
}

// FigureData is everything the figures show.
type FigureData struct {
	CCDFs []CCDF `json:"ccdfs"`
	// Share of lookups ≥ 5 s per cell, one group per back end.
	SlowShare []BarGroup `json:"share_ge_5s"`
	// Counter deltas per cell: insert_failed, clashres, emulator dropped.
	Counters []BarGroup `json:"counters"`
	// Queries per lookup per cell with a capture; empty without captures.
	QueriesPerLookup []Bar `json:"queries_per_lookup"`
}

// cellLabel names a cell within its back end's figure: the id without its
// shape and resolver, with the cluster kept when the run has several.
func cellLabel(c *analyze.Cell, multiCluster bool) string {
	parts := strings.Split(c.ID, "_")
	label := c.Mitigation
	if len(parts) > 3 {
		label += " " + strings.Join(parts[3:], " ")
	}
	if c.Backend != c.Resolver {
		label += " (runs " + c.Backend + ")"
	}
	if multiCluster {
		label = c.Cluster + ": " + label
	}
	return label
}

// Figures computes the data of every figure from a.
func Figures(a *analyze.Analysis) FigureData {
	clusters := map[string]bool{}
	for _, c := range a.Cells {
		clusters[c.Cluster] = true
	}
	multi := len(clusters) > 1
	var fd FigureData
	var backends []string
	byBackend := map[string][]*analyze.Cell{}
	for _, c := range a.Cells {
		if !c.Measured() {
			continue
		}
		// Figures group by the scenario's back end: grpc-ares with grpc-native
		// belongs next to grpc-ares without it.
		if _, ok := byBackend[c.Resolver]; !ok {
			backends = append(backends, c.Resolver)
		}
		byBackend[c.Resolver] = append(byBackend[c.Resolver], c)
	}
	ifd, cfd, emu := BarGroup{Name: GroupInsertFailed}, BarGroup{Name: GroupClashResolved}, BarGroup{Name: GroupEmulatorDropped}
	anyEmu := false
	for _, b := range backends {
		ccdf := CCDF{Backend: b}
		slow := BarGroup{Name: b}
		for _, c := range byBackend[b] {
			label := cellLabel(c, multi)
			ccdf.Series = append(ccdf.Series, Series{Label: label, Cell: c.ID, Points: ccdfPoints(c.Histogram())})
			slow.Bars = append(slow.Bars, Bar{Label: label, Cell: c.ID, Value: c.Stats.ShareAtLeast5s})
			if d := c.Counters; d != nil {
				full := b + " " + label
				ifd.Bars = append(ifd.Bars, Bar{Label: full, Cell: c.ID, Value: float64(d.Conntrack[analyze.InsertFailed])})
				cfd.Bars = append(cfd.Bars, Bar{Label: full, Cell: c.ID, Value: float64(d.Conntrack[analyze.ClashResolved])})
				dropped := Bar{Label: full, Cell: c.ID, NotApplicable: d.Emulator == nil}
				if d.Emulator != nil {
					anyEmu = true
					dropped.Value = float64(d.Emulator[analyze.EmulatorDropped])
				}
				emu.Bars = append(emu.Bars, dropped)
			}
			if cp := c.Capture; cp != nil && cp.Lookups.Count > 0 {
				fd.QueriesPerLookup = append(fd.QueriesPerLookup, Bar{Label: b + " " + label, Cell: c.ID, Value: cp.QueriesPerLookup()})
			}
		}
		fd.CCDFs = append(fd.CCDFs, ccdf)
		fd.SlowShare = append(fd.SlowShare, slow)
	}
	if len(ifd.Bars) > 0 {
		fd.Counters = []BarGroup{ifd, cfd}
		if anyEmu {
			fd.Counters = append(fd.Counters, emu)
		}
	}
	return fd
}

// ccdfPoints gives the share of lookups ≥ x (x in seconds) at both ends of
// each non-empty bucket: it falls within a bucket and stays flat between
// buckets. The last point (share 0) is left out: log axes cannot show it.
func ccdfPoints(h *analyze.Histogram) []XY {
	if h == nil || h.Count() == 0 {
		return nil
	}
	buckets := h.Buckets()
	n := float64(h.Count())
	pts := make([]XY, 0, 2*len(buckets))
	remaining := h.Count()
	for _, b := range buckets {
		low := float64(max(b.Low, 1)) / 1e6 // log axes: 0 µs drawn at 1 µs
		pts = append(pts, XY{X: low, Y: float64(remaining) / n})
		remaining -= b.Count
		if remaining > 0 {
			pts = append(pts, XY{X: float64(b.Low+b.Width) / 1e6, Y: float64(remaining) / n})
		}
	}
	return thin(pts)
}

// thin drops points that a log-log figure cannot tell from the last one
// kept (both coordinates within 2 %), always keeping the last point, so
// figures stay light while every visible step (the one at 5 s) survives.
func thin(pts []XY) []XY {
	const close = 1.02
	out := pts[:1:1]
	for i, p := range pts[1:] {
		last := out[len(out)-1]
		if p.X >= last.X*close || p.Y*close <= last.Y || i == len(pts)-2 || p.Y == last.Y && p.X > last.X {
			out = append(out, p)
		}
	}
	return out
}
