package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/export"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

//go:embed index.html.tmpl
var indexTemplate string

var page = template.Must(template.New("index").Funcs(template.FuncMap{
	"pct":   func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) },
	"level": func(v float64) string { return fmt.Sprintf("%g%%", 100*v) },
	"dur":   format.Duration,
	"ratio": ratioText,
	"ci":    intervalText,
	"join":  strings.Join,
}).Parse(indexTemplate))

type pageData struct {
	Summary Summary
	Rows    []cellRow
	Figures []pageFigure
}

type pageFigure struct {
	Figure
	// DataURI is the PNG inline, so index.html needs no other file.
	DataURI template.URL
}

// HTML renders index.html: the claims, the cells and the figures, with the
// figures inline as data URIs. Everything from the run is escaped by
// html/template.
func HTML(s Summary, figs []Figure) ([]byte, error) {
	d := pageData{Summary: s}
	for _, c := range s.Cells {
		d.Rows = append(d.Rows, newCellRow(c))
	}
	for _, f := range figs {
		// A data: URL of our own PNG bytes, base64: safe to mark as a URL.
		uri := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(f.png))
		d.Figures = append(d.Figures, pageFigure{Figure: f, DataURI: uri})
	}
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render index.html: %w", err)
	}
	return b.Bytes(), nil
}

// Write writes a run's report from its analysis and the expectations judged
// on it: summary.json, plots/*.png, index.html and the cheap exports
// (exports/: CSV, JUnit XML, benchfmt), each atomically.
func Write(run results.RunDir, a *analyze.Analysis, exps []expect.Result) error {
	s := NewSummary(a)
	s.SetExpectations(exps)
	if err := results.WriteJSON(run.SummaryPath(), s); err != nil {
		return err
	}
	figs, err := Draw(Figures(a))
	if err != nil {
		return err
	}
	if err := WriteFigures(run, figs); err != nil {
		return err
	}
	html, err := HTML(s, figs)
	if err != nil {
		return err
	}
	if err := results.WriteFile(run.IndexPath(), html); err != nil {
		return err
	}
	// The exports made from the analysis alone cost milliseconds: every
	// report has them (exports/), so CI can read junit.xml without a step.
	src, err := export.New(run, a, s.Expectations)
	if err != nil {
		return err
	}
	_, err = export.Write(run.ExportsDir(), src, export.Cheap...)
	return err
}

// Build analyses the run on disk, judges the expectations of its recorded
// scenario and writes its report: what `labrun report` does, with no
// cluster. The expectations' sources are lines of results/<run>/scenario.yaml.
func Build(run results.RunDir) (*analyze.Analysis, []expect.Result, error) {
	sc, err := run.ReadScenario()
	if err != nil {
		return nil, nil, fmt.Errorf("report %s: %w", run.Dir, err)
	}
	return BuildExpecting(run, sc.Expect)
}

// BuildExpecting is Build with the expectations of spec: labrun run passes
// those of the file it was given, so that results name its lines.
func BuildExpecting(run results.RunDir, spec scenario.Expect) (*analyze.Analysis, []expect.Result, error) {
	a, err := analyze.Load(run)
	if err != nil {
		return nil, nil, err
	}
	exps := expect.Evaluate(spec, a)
	if err := Write(run, a, exps); err != nil {
		return nil, nil, fmt.Errorf("report %s: %w", run.Dir, err)
	}
	return a, exps, nil
}
