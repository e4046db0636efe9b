package export

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/perf/benchfmt"

	"labrun.dev/labrun/pkg/analyze"
)

type parsed struct {
	results []*benchfmt.Result
	units   benchfmt.UnitMetadataMap
}

func parseBench(t *testing.T, data []byte) parsed {
	t.Helper()
	r := benchfmt.NewReader(bytes.NewReader(data), "bench.txt")
	var p parsed
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			p.results = append(p.results, rec.Clone())
		case *benchfmt.SyntaxError:
			t.Errorf("benchfmt: %v", rec)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	p.units = r.Units()
	return p
}

func TestBenchfmt(t *testing.T) {
	src := loadSynthetic(t, false)
	dir := t.TempDir()
	if _, err := Write(dir, src, Benchfmt); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, BenchfmtFile))
	if err != nil {
		t.Fatal(err)
	}
	p := parseBench(t, data)
	var measured []*analyze.Cell
	for _, c := range src.Analysis.Cells {
		if c.Measured() {
			measured = append(measured, c)
		}
	}
	if len(p.results) != len(measured) || len(measured) == 0 {
		t.Fatalf("%d benchmark results, want one per measured cell (%d)", len(p.results), len(measured))
	}
	for i, r := range p.results {
		c := measured[i]
		if r.Name.String() != benchName(c) || r.Iters != int(c.Stats.Count) {
			t.Errorf("result %d: %s %d, want %s %d", i, r.Name, r.Iters, benchName(c), c.Stats.Count)
		}
		base, parts := r.Name.Parts()
		if string(base) != "DNS" || len(parts) != 4 || string(parts[0]) != "/cell="+c.ID {
			t.Errorf("name %s splits into %s %q", r.Name, base, parts)
		}
		for unit, want := range map[string]float64{"ms/p50-lookup": c.Stats.P50MS, "ms/p99-lookup": c.Stats.P99MS,
			"ms/max-lookup": c.Stats.MaxMS, "share-at-5s": c.Stats.ClusteredShare,
			"emulator-drops": float64(c.Counters.Emulator["dropped"]), "insert-failed": float64(c.Counters.Conntrack["insert_failed"])} {
			if got, ok := r.Value(unit); !ok || got != want {
				t.Errorf("%s: %s = %v (%v), want %v", c.ID, unit, got, ok, want)
			}
		}
		for key, want := range map[string]string{"labrun-format": BenchfmtVersion, "kernel": src.Analysis.Env.Kernel,
			"kubernetes": src.Analysis.Env.Kubernetes, "run": src.Analysis.Run} {
			if got := r.GetConfig(key); got != want {
				t.Errorf("config %s = %q, want %q", key, got, want)
			}
		}
	}
	for _, u := range benchUnits {
		if p.units.GetBetter(u.unit) != -1 {
			t.Errorf("unit %s: benchstat would not know lower is better", u.unit)
		}
	}
}

// A mitigation id ending in -<digits> must not be read as GOMAXPROCS.
func TestBenchNameKeepsTrailingDigits(t *testing.T) {
	c := &analyze.Cell{ID: "default_glibc_ndots-1", Resolver: "glibc", Mitigation: "ndots-1", Load: "p2c4r50d1m0s"}
	line := []byte("Benchmark" + benchName(c) + " 10 1.5 ms/p50-lookup\n")
	p := parseBench(t, line)
	if len(p.results) != 1 {
		t.Fatalf("%d results", len(p.results))
	}
	_, parts := p.results[0].Name.Parts()
	want := []string{"/cell=default_glibc_ndots-1", "/resolver=glibc", "/mitigation=ndots-1", "/load=p2c4r50d1m0s"}
	if len(parts) != len(want) {
		t.Fatalf("parts %q, want %q", parts, want)
	}
	for i := range want {
		if string(parts[i]) != want[i] {
			t.Errorf("part %d = %q, want %q", i, parts[i], want[i])
		}
	}
}
