package site

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/analyze"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var pages = template.Must(template.New("site").Funcs(template.FuncMap{
	"href":      href,
	"date":      dateText,
	"shortdate": shortDate,
	"sortdate":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dash":      orDash,
	"join":      strings.Join,
	"inc":       func(n int) int { return n + 1 },
	"add":       func(a, b int) int { return a + b },
	"symbol":    symbol,
	"msp":       func(v *float64) string { return ifSet(v, format.Duration) },
	"pctp":      func(v *float64) string { return ifSet(v, share) },
	"deref":     func(v *float64) float64 { return derefOr(v, 0) },
	"countp":    countText,
	"ratio":     func(v float64) string { return fmt.Sprintf("%.3g", v) },
	"ci":        intervalText,
	"pct":       func(v float64) string { return strconv.FormatFloat(100*v, 'g', -1, 64) },
}).ParseFS(templateFS, "templates/*.tmpl"))

// base is what every page's footer shows.
type base struct {
	Root      string // the site root, relative to the page
	Generated time.Time
	Schema    string
}

type indexPage struct {
	base
	Runs           []Run
	Histories      []History
	Notes          []string
	MinHistoryRuns int
}

type claimsPage struct {
	base
	Grid Grid
	// FirstExpectation is the index of the first expectation row, where
	// the grid's second section starts; -1 without one.
	FirstExpectation int
}

func newClaimsPage(b base, g Grid) claimsPage {
	first := slices.IndexFunc(g.Rows, func(r GridRow) bool { return r.Kind == RowExpectation })
	return claimsPage{base: b, Grid: g, FirstExpectation: first}
}

type cellPageData struct {
	base
	History   History
	Latest    *HistoryPoint
	Scenarios []string
	Measured  int
	GRPC      bool
	Figures   []pageFigure
	Rows      []HistoryPoint // newest first
}

type pageFigure struct {
	File, Title, Caption string
	Width, Height        int // CSS pixels
}

type latestPage struct {
	base
	LatestPage
}

type runNav struct {
	Cells []History
	Total int
}

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func newCellPage(b base, h History, figs []pageFigure) cellPageData {
	d := cellPageData{base: b, History: h, Figures: figs}
	for i := len(h.Points) - 1; i >= 0; i-- {
		p := h.Points[i]
		d.Rows = append(d.Rows, p)
		if !slices.Contains(d.Scenarios, p.Scenario) {
			d.Scenarios = append(d.Scenarios, p.Scenario)
		}
		if p.Measured() {
			d.Measured++
		}
		if p.HitShare != nil {
			d.GRPC = true
		}
	}
	d.Latest = &d.Rows[0]
	return d
}

// href makes a link from a page to a site file: root (the way up to the
// site root) and the file's path, each segment escaped, so a run named
// with spaces or a '#' still links.
func href(root, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return root + strings.Join(segs, "/")
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func shortDate(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("01-02 15:04")
}

func symbol(class string) string {
	switch class {
	case ClassPass:
		return "✓"
	case ClassFail:
		return "✗"
	case ClassNotRun:
		return "–"
	}
	return "·"
}

func ifSet(v *float64, f func(float64) string) string {
	if v == nil {
		return "–"
	}
	return f(*v)
}

func derefOr(v *float64, d float64) float64 {
	if v == nil {
		return d
	}
	return *v
}

func countText(v *uint64, absent string) string {
	if v == nil {
		return absent
	}
	return fmt.Sprintf("+%d", *v)
}

func intervalText(i *analyze.Interval) string {
	s := fmt.Sprintf("[%.3g, %.3g]", i.Low, i.High)
	if i.Low <= 1 && 1 <= i.High {
		s += " holds 1"
	}
	return s
}

// xLabels names each history point on the figures' x axis: its date, or
// its run's name when the date is unknown.
func xLabels(h History) []string {
	out := make([]string, len(h.Points))
	for i, p := range h.Points {
		out[i] = shortDate(p.Date)
		if p.Date.IsZero() {
			out[i] = p.Run
		}
	}
	return out
}

// share writes a fraction as format.Percent does a percentage.
func share(v float64) string { return format.Percent(100 * v) }
