package compare

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteJSON writes the comparison as one indented JSON object of schema
// labrun.dev/compare/v1 (docs/compare.md lists its fields).
func (cmp *Comparison) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cmp); err != nil {
		return fmt.Errorf("write comparison as JSON: %w", err)
	}
	return nil
}

// CSVHeader is the first line of WriteCSV's output.
var CSVHeader = []string{"status", "cell", "backend", "metric",
	"a_state", "a_lookups", "a_tested", "a_median_ms", "a_median_low_ms", "a_median_high_ms", "a_p99_ms", "a_events", "a_share",
	"b_state", "b_lookups", "b_tested", "b_median_ms", "b_median_low_ms", "b_median_high_ms", "b_p99_ms", "b_events", "b_share",
	"change", "p", "adjusted_p", "significant", "below_min_effect", "direction", "notes"}

// CSV row statuses: compared rows, then cells that could not be.
const (
	StatusCompared    = "compared"
	StatusOnlyA       = "only-a"
	StatusOnlyB       = "only-b"
	StatusNotMeasured = "not-measured"
)

// WriteCSV writes one line per row, then one per cell that could not be
// compared (its status says why; the numbers are empty). Non-finite numbers
// are empty too.
func (cmp *Comparison) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, r := range cmp.Rows {
		line := []string{StatusCompared, r.Cell, r.Backend, string(r.Metric), "complete"}
		line = append(line, sideCSV(r.A)...)
		line = append(line, "complete")
		line = append(line, sideCSV(r.B)...)
		line = append(line, num(float64(r.Change)), num(r.P), num(r.AdjustedP),
			strconv.FormatBool(r.Significant), strconv.FormatBool(r.BelowMinEffect), string(r.Direction),
			strings.Join(r.Warnings, "; "))
		cw.Write(line)
	}
	blank := make([]string, 8)
	tail := make([]string, 6)
	for _, id := range cmp.OnlyA {
		cw.Write(cellCSV(StatusOnlyA, id, "", "", blank, tail, "only in A"))
	}
	for _, id := range cmp.OnlyB {
		cw.Write(cellCSV(StatusOnlyB, id, "", "", blank, tail, "only in B"))
	}
	for _, u := range cmp.Unmeasured {
		note := "A: " + presence(u.A) + "; B: " + presence(u.B)
		cw.Write(cellCSV(StatusNotMeasured, u.Cell, u.A.State, u.B.State, blank, tail, note))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write comparison as CSV: %w", err)
	}
	return nil
}

func sideCSV(s Side) []string {
	return []string{strconv.FormatUint(s.Lookups, 10), strconv.Itoa(s.Tested), num(s.MedianMS),
		num(float64(s.MedianLowMS)), num(float64(s.MedianHighMS)), num(s.P99MS),
		strconv.FormatUint(s.Events, 10), num(s.Share)}
}

func cellCSV(status, cell, stateA, stateB string, blank, tail []string, note string) []string {
	line := []string{status, cell, "", "", stateA}
	line = append(line, blank...)
	line = append(line, stateB)
	line = append(line, blank...)
	line = append(line, tail...)
	return append(line, note)
}

// num formats a number for CSV: shortest exact form, empty if not finite.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
