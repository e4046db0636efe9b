package workload

import (
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/probe"
)

// The pod's arguments must be what cmd/probe accepts: the same back end
// names, and a --names list its parser reads back to the same names.
func TestArgsMatchTheProbe(t *testing.T) {
	for _, r := range mitigation.Resolvers {
		if mitigation.Unavailable(r) != "" {
			continue // planned as not run, never given to a probe
		}
		for _, f := range mitigation.ProbeFlags(r) {
			name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			switch name {
			case "backend":
				if !slices.Contains(probe.Backends, value) {
					t.Errorf("resolver %s: back end %s is unknown to pkg/probe (%v)", r, value, probe.Backends)
				}
			case "jvm-cache":
				if value != probe.JVMCacheDefaults && value != probe.JVMCacheOff {
					t.Errorf("resolver %s: jvm cache variant %s is unknown to pkg/probe", r, value)
				}
			default:
				t.Errorf("resolver %s: flag %s is not checked against pkg/probe here", r, f)
			}
		}
	}
	for _, set := range []string{"none", "fqdn"} {
		pod, err := ProbePod(cellFor(t, "glibc", set), opts)
		if err != nil {
			t.Fatal(err)
		}
		var list string
		for _, a := range pod.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--names="); ok {
				list = v
			}
		}
		names, err := probe.ParseNames(list)
		if err != nil {
			t.Fatalf("%s: the probe refuses --names=%s: %v", set, list, err)
		}
		if len(names) != 2 || (set == "fqdn" && names[1].Name != "api.lab.example.") || (set == "none" && string(names[1].Kind) != "external") {
			t.Errorf("%s: the probe reads %+v", set, names)
		}
	}
}
