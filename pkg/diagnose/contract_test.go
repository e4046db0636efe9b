package diagnose

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/probe"
)

// Every probe pod's arguments must be what cmd/probe accepts: each flag is
// read as the probe reads it, and the probe's own Validate passes.
func TestProbeArgsMatchTheProbe(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.96.0.10\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Facts{DNS: dns(2), NodeLocal: &NodeLocal{ListenIP: "169.254.20.10"}}
	for _, p := range PlanProbes(f, []string{"w1"}) {
		pod, err := ProbePod("x", p, testImages, DefaultLoad, "cluster.local")
		if err != nil {
			t.Fatal(err)
		}
		cfg := probe.Defaults()
		cfg.ResolvConf = resolv
		for _, a := range pod.Spec.Containers[0].Args {
			name, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			switch name {
			case "backend":
				cfg.Backend = v
			case "names":
				if cfg.Names, err = probe.ParseNames(v); err != nil {
					t.Errorf("%s: --names=%s: %v", p.Pod, v, err)
				}
			case "rate":
				if cfg.Rate, err = strconv.ParseFloat(v, 64); err != nil {
					t.Errorf("%s: %s: %v", p.Pod, a, err)
				}
			case "concurrency":
				if cfg.Concurrency, err = strconv.Atoi(v); err != nil {
					t.Errorf("%s: %s: %v", p.Pod, a, err)
				}
			case "duration":
				if cfg.Duration, err = time.ParseDuration(v); err != nil {
					t.Errorf("%s: %s: %v", p.Pod, a, err)
				}
			case "cell":
				cfg.Cell = v
			case "mitigation":
				cfg.Mitigation = v
			default:
				t.Errorf("%s: flag %s is not checked against pkg/probe here", p.Pod, a)
			}
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: the probe refuses its arguments: %v", p.Pod, err)
		}
		if cfg.Duration != DefaultLoad.Duration || cfg.Rate != DefaultLoad.Rate || len(cfg.Names) != 1 {
			t.Errorf("%s: read back %+v", p.Pod, cfg)
		}
	}
}
