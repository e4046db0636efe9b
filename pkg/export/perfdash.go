package export

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"labrun.dev/labrun/pkg/results"
)

// PerfDataVersion is PerfData's version field. perfdash keeps, per test,
// the builds whose version equals the first one it read: change it only when
// a data item changes meaning.
const PerfDataVersion = "labrun.dev/perfdata/v1"

// Where perfdash's local mode (perfdash --mode=local --logsPath=DIR) looks:
// DIR/<job>/<build>/artifacts/<OutputFilePrefix>..., build a number. The
// "performance" job type reads files starting with DnsLookupLatency as its
// DNS / DNSLookupLatency test (parsed as PerfData).
const (
	perfdashDir      = "perfdash"
	perfdashArtifact = "artifacts"
	perfdashFile     = "DnsLookupLatency_labrun.json"
	perfdashConfig   = "jobs.yaml"
	perfdashJobType  = "performance"
)

// PerfdashBuild names a run for perfdash: a job (one line of history) and a
// build number in it (perfdash orders builds by it, newest first).
type PerfdashBuild struct {
	Job   string // default labrun-<scenario>
	Build int64  // default the run's start, Unix seconds
}

// perfData is clusterloader2's PerfData (measurement/util/perftype.go):
// the shape perfdash parses.
type perfData struct {
	Version   string            `json:"version"`
	DataItems []perfDataItem    `json:"dataItems"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type perfDataItem struct {
	Data   map[string]float64 `json:"data"`
	Unit   string             `json:"unit"`
	Labels map[string]string  `json:"labels,omitempty"`
}

// prowConfig is the part of a prow job config perfdash reads: each periodic's
// name and its perfDash* tags.
type prowConfig struct {
	Periodics []prowPeriodic `yaml:"periodics"`
}

type prowPeriodic struct {
	Name string   `yaml:"name"`
	Tags []string `yaml:"tags"`
}

func (s *Source) perfdashBuild() (PerfdashBuild, error) {
	b := s.Perfdash
	if b.Job == "" {
		b.Job = "labrun-" + s.Analysis.Scenario
	}
	if err := checkFileName("perfdash job", b.Job); err != nil {
		return b, err
	}
	if b.Build == 0 {
		if s.Analysis.Env.Started.IsZero() {
			return b, fmt.Errorf("perfdash needs a build number: env.json has no start time; give one (--perfdash-build)")
		}
		b.Build = s.Analysis.Env.Started.Unix()
	}
	if b.Build < 0 {
		return b, fmt.Errorf("perfdash build %d: want a positive number", b.Build)
	}
	return b, nil
}

func writePerfdash(dir string, src *Source) ([]string, error) {
	b, err := src.perfdashBuild()
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(perfDataOf(src), "", "  ")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, perfdashDir)
	file := filepath.Join(root, b.Job, strconv.FormatInt(b.Build, 10), perfdashArtifact, perfdashFile)
	if err := results.WriteFile(file, append(data, '\n')); err != nil {
		return nil, err
	}
	config := filepath.Join(root, perfdashConfig)
	cfg, err := mergePerfdashConfig(config, b.Job, src.Analysis.Scenario)
	if err != nil {
		return []string{file}, err
	}
	return []string{file, config}, results.WriteFile(config, cfg)
}

// perfDataOf makes one data item per measured cell: its latency percentiles
// in ms, labelled with the cell's axes. The run goes in the file's labels,
// not the items': an item label that changes from build to build would cut
// perfdash's history of a cell into one point per run.
func perfDataOf(src *Source) perfData {
	a := src.Analysis
	pd := perfData{Version: PerfDataVersion, DataItems: []perfDataItem{},
		Labels: map[string]string{"run": a.Run, "scenario": a.Scenario, "kernel": a.Env.Kernel}}
	for _, c := range a.Cells {
		if !c.Measured() {
			continue
		}
		cl := src.clusterOf(c.ID)
		profile := c.EmulatorProfile
		if !c.Emulator {
			profile = "bare-kernel"
		}
		pd.DataItems = append(pd.DataItems, perfDataItem{
			Unit: "ms",
			Data: map[string]float64{"Perc50": c.Stats.P50MS, "Perc90": c.Stats.P90MS, "Perc99": c.Stats.P99MS},
			Labels: map[string]string{
				"Metric": "DNSLookupLatency", "cell": c.ID, "resolver": c.Resolver, "mitigation": c.Mitigation,
				"podNetwork": cl.PodNetwork, "kubeProxy": cl.KubeProxy, "dns": cl.DNS.Server,
				"emulatorProfile": profile, "names": c.Names, "load": c.Load,
			},
		})
	}
	return pd
}

// mergePerfdashConfig returns the prow config at path with job added (a
// second run of the same scenario exported to the same directory keeps one
// entry), so that `perfdash --configPath` finds every job exported there.
func mergePerfdashConfig(path, job, scenario string) ([]byte, error) {
	var cfg prowConfig
	if data, err := readFileIfExists(path); err != nil {
		return nil, err
	} else if data != nil {
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	entry := prowPeriodic{Name: job, Tags: []string{"perfDashPrefix: labrun " + scenario, "perfDashJobType: " + perfdashJobType}}
	replaced := false
	for i, p := range cfg.Periodics {
		if p.Name == job {
			cfg.Periodics[i], replaced = entry, true
		}
	}
	if !replaced {
		cfg.Periodics = append(cfg.Periodics, entry)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", path, err)
	}
	return out, nil
}
