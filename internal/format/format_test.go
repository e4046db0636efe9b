package format

import "testing"

func TestDuration(t *testing.T) {
	for ms, want := range map[float64]string{0.85: "850 µs", 2.6: "2.6 ms", 12.34: "12.3 ms", 5030: "5.03 s"} {
		if got := Duration(ms); got != want {
			t.Errorf("Duration(%g) = %q, want %q", ms, got, want)
		}
	}
}

func TestPercent(t *testing.T) {
	for v, want := range map[float64]string{0: "0 %", 0.05: "0.05 %", 0.0833: "0.083 %", 12.5: "12.5 %"} {
		if got := Percent(v); got != want {
			t.Errorf("Percent(%g) = %q, want %q", v, got, want)
		}
	}
}
