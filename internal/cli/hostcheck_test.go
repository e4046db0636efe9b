package cli

import (
	"bytes"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/hostcheck"
)

func TestWriteKernel(t *testing.T) {
	var b bytes.Buffer
	k := hostcheck.Kernel{Release: "6.18.0", Findings: []hostcheck.Finding{
		{Feature: hostcheck.IPVS, State: hostcheck.Absent, Evidence: "CONFIG_IP_VS not set"},
		{Feature: hostcheck.VXLAN, State: hostcheck.Present, Evidence: "ip link add succeeded"},
	}}
	if err := writeKernel(&b, k); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"kernel 6.18.0", "IPVS", "absent", "kubeProxy ipvs", "CONFIG_IP_VS not set", "VXLAN", "present"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 4 {
		t.Errorf("%d lines, want kernel + header + 2 features:\n%s", lines, out)
	}
}
