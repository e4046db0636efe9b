package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// CheckProbes compares what each probe's summary line says with the samples
// its file holds, and returns what disagrees ("" when everything does): a
// missing summary, a different count, a probe stopped early, no file at all.
// The runner records a non-empty answer as an incomplete cell; the analysis
// checks again on every report.
func CheckProbes(probes []Probe) string {
	if len(probes) == 0 {
		return "no sample files"
	}
	var problems []string
	for _, p := range probes {
		switch {
		case p.Summary == nil:
			problems = append(problems, fmt.Sprintf("%s: no summary line", p.File))
		case p.Summary.Lookups != p.Samples:
			problems = append(problems, fmt.Sprintf("%s: summary says %d lookups, file holds %d", p.File, p.Summary.Lookups, p.Samples))
		case !p.Summary.Complete:
			problems = append(problems, fmt.Sprintf("%s: the probe stopped early", p.File))
		}
	}
	return strings.Join(problems, "; ")
}

// NumericFields returns the non-negative whole-number fields of a JSON
// object, e.g. the race emulator agent's counters snapshot, for
// NodeCounters.EmulatorBefore/After. Other fields are skipped. The result
// still holds the agent's whole-number settings (port, window_us, ...): the
// file keeps what the agent said, and the analysis takes only the
// EmulatorCounters from it.
func NumericFields(data []byte) (map[string]uint64, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := map[string]uint64{}
	for k, v := range obj {
		// Counters are whole numbers; fractions, negatives and text are not.
		if n, ok := v.(json.Number); ok {
			if u, err := strconv.ParseUint(n.String(), 10, 64); err == nil {
				out[k] = u
			}
		}
	}
	return out, nil
}
