package export

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"labrun.dev/labrun/pkg/results"
)

func TestCSV(t *testing.T) {
	src := loadSynthetic(t, false)
	dir := t.TempDir()
	if _, err := Write(dir, src, CSV); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, CSVFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll() // also checks every row has the header's width
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], csvColumns) {
		t.Fatalf("header %v", rows[0])
	}
	if len(rows)-1 != len(src.Analysis.Cells) {
		t.Fatalf("%d rows, want one per cell (%d)", len(rows)-1, len(src.Analysis.Cells))
	}
	col := func(row []string, name string) string { return row[slices.Index(csvColumns, name)] }
	for i, c := range src.Analysis.Cells {
		row := rows[i+1]
		if col(row, "format") != CSVVersion || col(row, "cell") != c.ID || col(row, "state") != string(c.State) {
			t.Errorf("row %d: format %q cell %q state %q", i, col(row, "format"), col(row, "cell"), col(row, "state"))
		}
		if col(row, "pod_network") == "" || col(row, "kube_proxy") == "" || col(row, "dns") == "" {
			t.Errorf("cell %s: cluster axes missing: %v", c.ID, row)
		}
		if c.State == results.NotRun {
			for _, k := range []string{"n", "p99_ms", "insert_failed", "mean_ratio"} {
				if col(row, k) != "" {
					t.Errorf("not-run cell %s: %s = %q, want empty", c.ID, k, col(row, k))
				}
			}
			continue
		}
		num := func(k string) float64 {
			v, err := strconv.ParseFloat(col(row, k), 64)
			if err != nil {
				t.Fatalf("cell %s column %s: %v", c.ID, k, err)
			}
			return v
		}
		checks := map[string]float64{"n": float64(c.Stats.Count), "p50_ms": c.Stats.P50MS, "p90_ms": c.Stats.P90MS,
			"p99_ms": c.Stats.P99MS, "max_ms": c.Stats.MaxMS, "share_at_5s_multiples": c.Stats.ClusteredShare,
			"timeouts": float64(c.Stats.Timeouts), "emulator_dropped": float64(c.Counters.Emulator["dropped"]),
			"insert_failed": float64(c.Counters.Conntrack["insert_failed"]), "clashres": float64(c.Counters.Conntrack["clashres"])}
		for k, want := range checks {
			if got := num(k); got != want {
				t.Errorf("cell %s: %s = %v, want %v", c.ID, k, got, want)
			}
		}
		if cmp := c.Comparison; cmp != nil {
			if num("p99_ratio_low") != cmp.P99Ratio.Low || num("p99_ratio_high") != cmp.P99Ratio.High || col(row, "baseline") != cmp.Baseline {
				t.Errorf("cell %s: comparison columns differ from %+v", c.ID, cmp)
			}
			if !(num("p99_ratio_low") <= num("p99_ratio") && num("p99_ratio") <= num("p99_ratio_high")) {
				t.Errorf("cell %s: p99 ratio outside its interval", c.ID)
			}
		} else if col(row, "mean_ratio") != "" {
			t.Errorf("cell %s without comparison has mean_ratio %q", c.ID, col(row, "mean_ratio"))
		}
	}
	// The data has delayed and clean cells, measured and not: the test covers both.
	var compared, notRun int
	for _, c := range src.Analysis.Cells {
		if c.Comparison != nil {
			compared++
		}
		if c.State == results.NotRun {
			notRun++
		}
	}
	if compared == 0 || notRun == 0 {
		t.Errorf("synthetic run has %d compared and %d not-run cells; want some of each", compared, notRun)
	}
}
