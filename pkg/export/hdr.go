package export

import (
	"bytes"
	"fmt"
	"path/filepath"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

// HDRVersion is written in a comment line at the top of each log.
const HDRVersion = "labrun.dev/hdr/v1"

// HDR settings: every latency in µs, from 1 µs to an hour, with 3
// significant digits (values within 0.1 %).
const (
	hdrDir        = "hdr"
	hdrLowestUS   = 1
	hdrHighestUS  = 3_600_000_000
	hdrSigFigures = 3
)

// HDRPath is where a cell's histogram log goes under the export directory.
func HDRPath(dir, cell string) string { return filepath.Join(dir, hdrDir, cell+".hlog") }

func writeHDR(dir string, src *Source) ([]string, error) {
	var files []string
	for _, c := range src.Analysis.Cells {
		if c.Stats == nil || c.Stats.Count == 0 {
			continue
		}
		data, err := hdrLog(src, c)
		if err != nil {
			return files, fmt.Errorf("cell %s: %w", c.ID, err)
		}
		path := HDRPath(dir, c.ID)
		if err := results.WriteFile(path, data); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

// hdrLog records every lookup of the cell, read again from raw/, into one
// histogram and writes it as an HdrHistogram interval log (format 1.3)
// holding one interval: the cell's time span from its status file, tagged
// with the cell id. Interval_Max is in seconds (µs / 1e6).
func hdrLog(src *Source, c *analyze.Cell) ([]byte, error) {
	h := hdrhistogram.New(hdrLowestUS, hdrHighestUS, hdrSigFigures)
	var recordErr error
	_, err := src.Run.ReadLookups(c.ID, func(l results.Lookup) {
		if recordErr != nil {
			return
		}
		if err := h.RecordValue(max(l.DurationUS, 0)); err != nil {
			recordErr = fmt.Errorf("lookup of %d µs: %w (the log holds up to %d µs)", l.DurationUS, err, int64(hdrHighestUS))
		}
	})
	if err == nil {
		err = recordErr
	}
	if err != nil {
		return nil, err
	}
	h.SetTag(c.ID)
	st, ok, err := src.Run.ReadStatus(c.ID)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := hdrhistogram.NewHistogramLogWriter(&b)
	steps := []func() error{
		w.OutputLogFormatVersion,
		func() error {
			return w.OutputComment(fmt.Sprintf("[%s run=%s cell=%s state=%s unit=us lookups=%d]", HDRVersion, src.Analysis.Run, c.ID, c.State, h.TotalCount()))
		},
	}
	// Without a start time in the status file the interval starts at 0
	// and no StartTime line claims 1970.
	if ok && !st.Started.IsZero() {
		start := st.Started.UnixMilli()
		h.SetStartTimeMs(start)
		h.SetEndTimeMs(max(st.Finished.UnixMilli(), start))
		steps = append(steps, func() error { return w.OutputStartTime(start) })
	}
	steps = append(steps, w.OutputLegend, func() error { return w.OutputIntervalHistogram(h) })
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("write histogram log: %w", err)
		}
	}
	return b.Bytes(), nil
}
