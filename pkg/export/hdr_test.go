package export

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func TestHDRMatchesAnalysis(t *testing.T) {
	src := loadSynthetic(t, false)
	dir := t.TempDir()
	files, err := Write(dir, src, HDR)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range src.Analysis.Cells {
		if c.Stats == nil || c.Stats.Count == 0 {
			if _, err := os.Stat(HDRPath(dir, c.ID)); err == nil {
				t.Errorf("cell %s has no samples but a histogram log", c.ID)
			}
			continue
		}
		f, err := os.Open(HDRPath(dir, c.ID))
		if err != nil {
			t.Fatal(err)
		}
		r := hdrhistogram.NewHistogramLogReader(f)
		h, err := r.NextIntervalHistogram()
		f.Close()
		if err != nil || h == nil {
			t.Fatalf("cell %s: decode histogram log: %v", c.ID, err)
		}
		if h.Tag() != c.ID {
			t.Errorf("tag %q, want %q", h.Tag(), c.ID)
		}
		if uint64(h.TotalCount()) != c.Stats.Count {
			t.Errorf("cell %s: %d values in the log, analysis counted %d", c.ID, h.TotalCount(), c.Stats.Count)
		}
		// analyze's quantiles are within 0.8 % of the true value, the
		// log's within 0.1 % (3 significant digits): they agree within the sum.
		// analyze takes the ceil(q·n)-th value, HdrHistogram the
		// round(q·n)-th: ask it for the same rank, which matters in a sparse tail.
		n := float64(c.Stats.Count)
		for _, q := range []struct {
			q    float64
			want float64 // ms
		}{{0.5, c.Stats.P50MS}, {0.9, c.Stats.P90MS}, {0.99, c.Stats.P99MS}, {0.999, c.Stats.P999MS}, {1, c.Stats.MaxMS}} {
			rank := math.Ceil(q.q * n)
			got := float64(h.ValueAtQuantile(100*rank/n)) / 1000
			if math.Abs(got-q.want) > 0.009*q.want+0.001 {
				t.Errorf("cell %s: q%g %.3f ms in the log, %.3f ms in the analysis", c.ID, q.q, got, q.want)
			}
		}
		checked++
	}
	if checked != len(files) || checked == 0 {
		t.Errorf("checked %d logs, wrote %d", checked, len(files))
	}
}

func TestHDRInterval(t *testing.T) {
	src := loadSynthetic(t, false)
	c := src.Analysis.Cells[0]
	st, _, err := src.Run.ReadStatus(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Started = time.UnixMilli(1_790_000_000_250)
	st.Finished = st.Started.Add(90 * time.Second)
	if err := src.Run.WriteStatus(st); err != nil {
		t.Fatal(err)
	}
	data, err := hdrLog(src, c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "#[StartTime: 1790000000 (seconds since epoch)") {
		t.Errorf("no StartTime line:\n%.300s", data)
	}
	h, err := hdrhistogram.NewHistogramLogReader(strings.NewReader(string(data))).NextIntervalHistogram()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.EndTimeMs() - h.StartTimeMs(); got != 90_000 {
		t.Errorf("interval %d ms, want 90000", got)
	}
}
