package results

import (
	"reflect"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/raceemu"
)

// The agent's snapshot and the analysis must agree on which fields count
// events: a counter added to the agent and not listed here would vanish
// from every report.
func TestEmulatorCountersMatchTheAgent(t *testing.T) {
	st := reflect.TypeFor[raceemu.Snapshot]()
	agent := map[string]bool{}
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous || f.Type.Kind() != reflect.Uint64 {
			continue // Info holds the settings; the gap histogram is a map
		}
		agent[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	if !reflect.DeepEqual(agent, EmulatorCounters) {
		t.Errorf("raceemu.Snapshot counters %v, EmulatorCounters %v", agent, EmulatorCounters)
	}
	for _, setting := range []string{"port", "queue", "window_us", "drop_probability"} {
		if EmulatorCounters[setting] {
			t.Errorf("%s is a setting, listed as a counter", setting)
		}
	}
}
