package export

import (
	"bytes"
	"encoding/csv"
	"path/filepath"
	"strconv"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

// CSVVersion is the first column of every row; a column that changes
// meaning or goes away changes it, an added column (at the end) does not.
const CSVVersion = "labrun.dev/csv/v1"

// CSVFile is the CSV export's file name under the export directory.
const CSVFile = "cells.csv"

// csvColumns are the header; csvRow fills them in the same order.
var csvColumns = []string{
	"format", "run", "cell", "shape", "cluster", "pod_network", "kube_proxy", "dns",
	"resolver", "backend", "mitigation", "names", "load", "chaos", "emulator", "emulator_profile", "repeat",
	"state", "reason",
	"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
	"ge_1s", "share_ge_1s", "ge_5s", "share_ge_5s", "at_5s_multiples", "share_at_5s_multiples",
	"timeouts", "errors", "emulator_dropped", "insert_failed", "clashres",
	"baseline", "mean_ratio", "mean_ratio_low", "mean_ratio_high", "p99_ratio", "p99_ratio_low", "p99_ratio_high",
	"ci_level", "ci_resamples",
}

func writeCSV(dir string, src *Source) ([]string, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(csvColumns); err != nil {
		return nil, err
	}
	for _, c := range src.Analysis.Cells {
		if err := w.Write(csvRow(src, c)); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, CSVFile)
	return []string{path}, results.WriteFile(path, b.Bytes())
}

// csvRow is one cell; a number the cell does not have (no samples, no
// counters, no baseline) is an empty field, never 0.
func csvRow(src *Source, c *analyze.Cell) []string {
	cl := src.clusterOf(c.ID)
	row := []string{
		CSVVersion, src.Analysis.Run, c.ID, c.Shape, c.Cluster, cl.PodNetwork, cl.KubeProxy, cl.DNS.Server,
		c.Resolver, c.Backend, c.Mitigation, c.Names, c.Load, c.Chaos, strconv.FormatBool(c.Emulator), c.EmulatorProfile,
		strconv.Itoa(c.Repeat), string(c.State), c.Reason,
	}
	if s := c.Stats; s != nil {
		row = append(row, u(s.Count), f(s.MeanMS), f(s.P50MS), f(s.P90MS), f(s.P99MS), f(s.P999MS), f(s.MaxMS),
			u(s.AtLeast1s), f(s.ShareAtLeast1s), u(s.AtLeast5s), f(s.ShareAtLeast5s), u(s.Clustered), f(s.ClusteredShare),
			u(s.Timeouts), u(s.Errors))
	} else {
		row = append(row, make([]string, 15)...)
	}
	emu, insertFailed, clashres := drops(c)
	row = append(row, up(emu), up(insertFailed), up(clashres))
	if cmp := c.Comparison; cmp != nil {
		row = append(row, cmp.Baseline,
			f(cmp.MeanRatio.Ratio), f(cmp.MeanRatio.Low), f(cmp.MeanRatio.High),
			f(cmp.P99Ratio.Ratio), f(cmp.P99Ratio.Low), f(cmp.P99Ratio.High),
			f(cmp.Level), strconv.Itoa(cmp.Resamples))
	} else {
		row = append(row, make([]string, 9)...)
	}
	return row
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
func u(v uint64) string  { return strconv.FormatUint(v, 10) }

func up(v *uint64) string {
	if v == nil {
		return ""
	}
	return u(*v)
}
