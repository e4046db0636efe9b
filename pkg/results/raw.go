package results

import (
	"errors"
	"fmt"
	"io"
	"os"

	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/scenario"
)

// CreateRaw opens raw/<cell>/<pod>.jsonl for writing; it appears only on
// Commit, so a crashed collection leaves no half file behind.
func (r RunDir) CreateRaw(cell, pod string) (*AtomicFile, error) {
	if err := checkName("cell", cell); err != nil {
		return nil, err
	}
	if err := checkName("pod", pod); err != nil {
		return nil, err
	}
	return CreateAtomic(r.RawPath(cell, pod))
}

// Probe is what one raw file holds beyond its samples: the probe's summary
// line (nil if the probe never wrote one) and how many samples were read.
type Probe struct {
	File    string
	Samples uint64
	Summary *sample.Summary
}

// ReadSamples streams every sample of a cell to fn, file by file, and
// returns what each file held. It never keeps samples in memory.
func (r RunDir) ReadSamples(cell string, fn func(*sample.Sample)) ([]Probe, error) {
	files, err := r.RawFiles(cell)
	if err != nil {
		return nil, err
	}
	probes := make([]Probe, 0, len(files))
	for _, file := range files {
		p, err := readSampleFile(file, fn)
		if err != nil {
			return probes, err
		}
		probes = append(probes, p)
	}
	return probes, nil
}

func readSampleFile(file string, fn func(*sample.Sample)) (Probe, error) {
	f, err := os.Open(file)
	if err != nil {
		return Probe{}, fmt.Errorf("read samples: %w", err)
	}
	defer f.Close()
	p := Probe{File: file}
	dec := sample.NewDecoder(f)
	for {
		s, sum, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		if err != nil {
			return p, fmt.Errorf("read samples %s: %w", file, err)
		}
		if sum != nil {
			p.Summary = sum
			continue
		}
		p.Samples++
		fn(s)
	}
}

// WriteScenario records the scenario as resolved.
func (r RunDir) WriteScenario(s *scenario.Scenario) error {
	data, err := s.Marshal()
	if err != nil {
		return err
	}
	return WriteFile(r.ScenarioPath(), data)
}

// ReadScenario loads the recorded scenario.
func (r RunDir) ReadScenario() (*scenario.Scenario, error) {
	return scenario.LoadFile(r.ScenarioPath())
}
