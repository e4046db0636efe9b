package export

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestPerfdashLayout(t *testing.T) {
	src := loadSynthetic(t, false)
	src.Perfdash = PerfdashBuild{Build: 1790000000}
	dir := t.TempDir()
	files, err := Write(dir, src, PerfDash)
	if err != nil {
		t.Fatal(err)
	}
	// perfdash --mode=local --logsPath=dir/perfdash reads
	// <job>/<build>/artifacts/DnsLookupLatency*.
	want := filepath.Join(dir, "perfdash", "labrun-synthetic", "1790000000", "artifacts", "DnsLookupLatency_labrun.json")
	if len(files) != 2 || files[0] != want {
		t.Fatalf("files %v, want %s first", files, want)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	// Decoded strictly as clusterloader2's PerfData: no field it lacks.
	var pd struct {
		Version   string `json:"version"`
		DataItems []struct {
			Data   map[string]float64 `json:"data"`
			Unit   string             `json:"unit"`
			Labels map[string]string  `json:"labels"`
		} `json:"dataItems"`
		Labels map[string]string `json:"labels"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pd); err != nil {
		t.Fatal(err)
	}
	if pd.Version != PerfDataVersion || pd.Labels["run"] != "synthetic" {
		t.Errorf("version %q labels %v", pd.Version, pd.Labels)
	}
	byCell := map[string]int{}
	for i, it := range pd.DataItems {
		byCell[it.Labels["cell"]] = i
		if it.Unit != "ms" || len(it.Data) != 3 {
			t.Errorf("item %d: unit %q data %v", i, it.Unit, it.Data)
		}
		for _, k := range []string{"resolver", "mitigation", "podNetwork", "kubeProxy", "dns", "emulatorProfile"} {
			if it.Labels[k] == "" {
				t.Errorf("item %d: label %s missing: %v", i, k, it.Labels)
			}
		}
	}
	measured := 0
	for _, c := range src.Analysis.Cells {
		i, ok := byCell[c.ID]
		if ok != c.Measured() {
			t.Errorf("cell %s (state %s) in PerfData: %v", c.ID, c.State, ok)
			continue
		}
		if !ok {
			continue
		}
		measured++
		d := pd.DataItems[i].Data
		if d["Perc50"] != c.Stats.P50MS || d["Perc90"] != c.Stats.P90MS || d["Perc99"] != c.Stats.P99MS {
			t.Errorf("cell %s: %v, analysis p50 %v p90 %v p99 %v", c.ID, d, c.Stats.P50MS, c.Stats.P90MS, c.Stats.P99MS)
		}
		if pd.DataItems[i].Labels["emulatorProfile"] != "5.0-5.5" {
			t.Errorf("cell %s: emulatorProfile %q", c.ID, pd.DataItems[i].Labels["emulatorProfile"])
		}
	}
	if measured != len(pd.DataItems) {
		t.Errorf("%d items, %d measured cells", len(pd.DataItems), measured)
	}

	// A second build of the same job and another job share jobs.yaml.
	src.Perfdash.Build = 1790000100
	if _, err := Write(dir, src, PerfDash); err != nil {
		t.Fatal(err)
	}
	src.Perfdash.Job = "other"
	if _, err := Write(dir, src, PerfDash); err != nil {
		t.Fatal(err)
	}
	cfgData, err := os.ReadFile(filepath.Join(dir, "perfdash", "jobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg prowConfig
	if err := yaml.Unmarshal(cfgData, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Periodics) != 2 || cfg.Periodics[0].Name != "labrun-synthetic" || cfg.Periodics[1].Name != "other" {
		t.Fatalf("jobs.yaml: %+v", cfg)
	}
	tags := strings.Join(cfg.Periodics[0].Tags, "\n")
	if !strings.Contains(tags, "perfDashPrefix: labrun synthetic") || !strings.Contains(tags, "perfDashJobType: performance") {
		t.Errorf("tags %q", tags)
	}
	builds, err := os.ReadDir(filepath.Join(dir, "perfdash", "labrun-synthetic"))
	if err != nil || len(builds) != 2 {
		t.Errorf("builds of the job: %v %v", builds, err)
	}
}

func TestPerfdashBuildNumber(t *testing.T) {
	src := loadSynthetic(t, false)
	if _, err := Write(t.TempDir(), src, PerfDash); err == nil || !strings.Contains(err.Error(), "--perfdash-build") {
		t.Errorf("no start time and no build number: error %v, want one naming --perfdash-build", err)
	}
	src.Analysis.Env.Started = time.Unix(1790000000, 5e8)
	b, err := src.perfdashBuild()
	if err != nil || b.Build != 1790000000 || b.Job != "labrun-synthetic" {
		t.Errorf("defaults: %+v %v", b, err)
	}
	src.Perfdash.Job = "../x"
	if _, err := src.perfdashBuild(); err == nil {
		t.Error("a job name leaving the directory was accepted")
	}
}
