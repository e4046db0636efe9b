package hostcheck

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestIntegrationProbeMatchesFacts checks the probe's answers on this host
// against what FACTS.md measured on these machines (kernel 6.18, no modules):
// IPVS, netem, openvswitch and IPIP absent; VXLAN and NFQUEUE present. On
// another host it fails, naming the difference: update FACTS.md or the probe.
func TestIntegrationProbeMatchesFacts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root to create a network namespace (run without -short)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("TestIntegrationProbeMatchesFacts needs root: it tries netem, IPIP, VXLAN and NFQUEUE in a network namespace it creates")
	}
	before := namespaces(t)
	k, err := Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range k.Findings {
		t.Logf("%-11s %-7s %s", f.Feature, f.State, f.Evidence)
	}
	want := map[Feature]State{IPVS: Absent, Netem: Absent, OpenvSwitch: Absent, IPIP: Absent, VXLAN: Present, NFQueue: Present}
	for f, s := range want {
		if got := k.Finding(f); got.State != s {
			t.Errorf("%s: probe says %s (%s); FACTS.md says %s on these machines", f, got.State, got.Evidence, s)
		}
	}
	if r := k.Finding(IPVS).Reason(); r != "kernel lacks IPVS: CONFIG_IP_VS not set" {
		t.Errorf("IPVS reason %q, want %q", r, "kernel lacks IPVS: CONFIG_IP_VS not set")
	}
	// Netem and VXLAN were tried live, not read from the configuration.
	if e := k.Finding(VXLAN).Evidence; !strings.Contains(e, "succeeded") {
		t.Errorf("VXLAN evidence %q: want a live try", e)
	}
	if after := namespaces(t); after != before {
		t.Errorf("the probe left network namespaces behind: before %q, after %q", before, after)
	}
}

func namespaces(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var ours []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "labrun-hostcheck-") {
			ours = append(ours, l)
		}
	}
	return strings.Join(ours, ",")
}
