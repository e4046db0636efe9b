package site

import (
	"strings"

	"labrun.dev/labrun/pkg/report"
)

// Panel is the data of one history figure: one or more trends over the runs
// that have the cell, oldest left. Tests check panels; drawing is apart.
type Panel struct {
	Name    string  `json:"name"` // file name part: latency, ratio, delays, counters
	Title   string  `json:"title"`
	YLabel  string  `json:"y_label"`
	Caption string  `json:"caption"`
	LogY    bool    `json:"log_y,omitempty"`
	Trends  []Trend `json:"trends"`
	// RefY draws a dashed reference line (1 for ratios); 0 for none.
	RefY float64 `json:"ref_y,omitempty"`
}

// Trend is one line of a panel.
type Trend struct {
	Name   string       `json:"name"`
	Points []TrendPoint `json:"points"`
}

// TrendPoint is a value in one run: X indexes History.Points. Low and High
// bound its confidence interval, when there is one.
type TrendPoint struct {
	X    int      `json:"x"`
	Y    float64  `json:"y"`
	Low  *float64 `json:"low,omitempty"`
	High *float64 `json:"high,omitempty"`
}

// Trend names, also the legend's.
const (
	TrendP50       = "p50"
	TrendP99       = "p99"
	TrendP99Ratio  = "p99 / baseline"
	TrendMeanRatio = "mean / baseline"
	TrendShareAt5s = "at 5 s multiples"
	TrendHitShare  = "gRPC calls hit"
)

// Panels computes the figures of a cell's history from its complete runs
// (incomplete and not-run points are in the table only). A panel with no
// point is left out: no baseline comparison, no counters.
func Panels(h History) []Panel {
	latency := Panel{Name: "latency", Title: "Latency per run", YLabel: "ms (log scale)", LogY: true,
		Caption: "p50 and p99 of each run's lookups (from its histogram, within 0.8 %).",
		Trends:  []Trend{{Name: TrendP50}, {Name: TrendP99}}}
	ratio := Panel{Name: "ratio", Title: "Against the run's baseline (mitigation none)", YLabel: "ratio", RefY: 1,
		Caption: "p99 and mean of the cell over those of its baseline in the same run, with the run's 95 % bootstrap interval; " +
			"an interval that holds 1 cannot tell the cell from its baseline. Absent for the baseline itself.",
		Trends: []Trend{{Name: TrendP99Ratio}, {Name: TrendMeanRatio}}}
	delays := Panel{Name: "delays", Title: "Lookups delayed by the race", YLabel: "% of the run's lookups",
		Caption: "Share of lookups within 0.5 s of a multiple of 5 s (the resolver's retry timeout)."}
	delays.Trends = []Trend{{Name: TrendShareAt5s}}
	counters := Panel{Name: "counters", Title: "Drops and clashes during the cell", YLabel: "count, all nodes",
		Caption: "The race emulator's drops next to this kernel's own insert_failed and clashres: growth during the cell, summed over nodes.",
		Trends:  []Trend{{Name: report.GroupEmulatorDropped}, {Name: report.GroupInsertFailed}, {Name: report.GroupClashResolved}}}
	grpc := false
	for x, p := range h.Points {
		if !p.Measured() {
			continue
		}
		add(&latency.Trends[0], x, *p.P50MS, nil)
		add(&latency.Trends[1], x, *p.P99MS, nil)
		if r := p.P99Ratio; r != nil {
			add(&ratio.Trends[0], x, r.Ratio, &[2]float64{r.Low, r.High})
		}
		if r := p.MeanRatio; r != nil {
			add(&ratio.Trends[1], x, r.Ratio, &[2]float64{r.Low, r.High})
		}
		if p.ShareAt5s != nil {
			add(&delays.Trends[0], x, 100**p.ShareAt5s, nil)
		}
		if p.HitShare != nil {
			if !grpc {
				delays.Trends = append(delays.Trends, Trend{Name: TrendHitShare})
				grpc = true
			}
			add(&delays.Trends[1], x, 100**p.HitShare, nil)
		}
		for i, v := range []*uint64{p.EmulatorDropped, p.InsertFailed, p.ClashRes} {
			if v != nil {
				add(&counters.Trends[i], x, float64(*v), nil)
			}
		}
	}
	if grpc {
		delays.Caption += " For gRPC calls, which have a deadline, the share hit by the race: timed out or took ≥ 1 s."
	}
	var out []Panel
	for _, p := range []Panel{latency, ratio, delays, counters} {
		p.Trends = nonEmpty(p.Trends)
		if len(p.Trends) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func add(t *Trend, x int, y float64, ci *[2]float64) {
	p := TrendPoint{X: x, Y: y}
	if ci != nil {
		p.Low, p.High = &ci[0], &ci[1]
	}
	t.Points = append(t.Points, p)
}

func nonEmpty(ts []Trend) []Trend {
	var out []Trend
	for _, t := range ts {
		if len(t.Points) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// figureFile is a panel's SVG, relative to the site root.
func figureFile(h History, p Panel) string {
	return "cells/figures/" + strings.TrimSuffix(strings.TrimPrefix(h.Page, "cells/"), ".html") + "-" + p.Name + ".svg"
}
