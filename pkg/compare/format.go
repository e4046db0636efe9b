package compare

import (
	"fmt"
	"math"
	"strconv"
)

// Duration formats milliseconds with three significant digits and a unit
// that fits: 850µs, 1.50ms, 5.01s.
func Duration(ms float64) string {
	switch {
	case math.IsInf(ms, 0) || math.IsNaN(ms):
		return "∞"
	case ms >= 1000:
		return sig3(ms/1000) + "s"
	case ms >= 1 || ms == 0:
		return sig3(ms) + "ms"
	}
	return sig3(ms*1000) + "µs"
}

func sig3(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// HalfWidth is the median's interval as benchstat shows it: the larger
// distance from the median to a bound, in percent of the median.
func HalfWidth(s Side) string {
	lo, hi := float64(s.MedianLowMS), float64(s.MedianHighMS)
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return "±∞"
	}
	if s.MedianMS == 0 {
		return "±0%"
	}
	return fmt.Sprintf("±%.0f%%", 100*math.Max(hi/s.MedianMS-1, 1-lo/s.MedianMS))
}

// Percent formats a share (0.0123 → "1.23%"), with more digits for the
// small shares the 5 s problem is about.
func Percent(share float64) string {
	p := 100 * share
	switch {
	case p == 0:
		return "0%"
	case p < 0.1:
		return strconv.FormatFloat(p, 'f', 3, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 2, 64) + "%"
}

// PValue formats a p-value; below 10⁻⁴ the digits say nothing more.
func PValue(p float64) string {
	if p < 1e-4 {
		return "<0.0001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// Change formats a row's change with a sign: +7.3% for a ratio of medians,
// +5.04pp for shares.
func Change(r Row) string {
	c := float64(r.Change)
	if r.Metric == Latency {
		if math.IsInf(c, 0) || math.IsNaN(c) {
			return "?"
		}
		return fmt.Sprintf("%+.1f%%", 100*(c-1))
	}
	return fmt.Sprintf("%+.2fpp", c)
}

// Verdict is the change column: "~" when not significant, else the change
// and where it went.
func Verdict(r Row) string {
	switch {
	case r.Significant:
		return Change(r) + " " + string(r.Direction)
	case r.BelowMinEffect:
		return "~ (" + Change(r) + " < min)"
	}
	return "~"
}
