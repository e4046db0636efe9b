// Package format writes the lab's numbers one way in every output: the
// report, the site and the expectations' lines.
package format

import "fmt"

// Duration writes milliseconds in the unit that reads best: 850 µs, 2.6 ms,
// 5.03 s.
func Duration(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 1:
		return fmt.Sprintf("%.3g ms", ms)
	default:
		return fmt.Sprintf("%.0f µs", ms*1000)
	}
}

// Percent writes a percentage (0–100) with two significant digits below
// 1 %: 0.05 % of lookups at 5 s is a finding, not a zero.
func Percent(v float64) string {
	switch {
	case v == 0:
		return "0 %"
	case v < 1:
		return fmt.Sprintf("%.2g %%", v)
	default:
		return fmt.Sprintf("%.1f %%", v)
	}
}
