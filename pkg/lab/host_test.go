package lab

import (
	"errors"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/hostcheck"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
)

const hostShapesYAML = `apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: host}
clusters:
  - {name: plain}
  - {name: ipvs, kubeProxy: ipvs}
  - {name: kubedns, dns: {server: kube-dns}}
workload:
  resolvers: [glibc, grpc-ares]
  mitigations: [none, grpc-native]
`

// noIPVS is this lab's kernel as hostcheck.Probe sees it (docs/axes.md).
var noIPVS = hostcheck.Kernel{Release: "6.18", Findings: []hostcheck.Finding{
	{Feature: hostcheck.IPVS, State: hostcheck.Absent, Evidence: "CONFIG_IP_VS not set"},
	{Feature: hostcheck.VXLAN, State: hostcheck.Present, Evidence: "tried"},
	{Feature: hostcheck.NFQueue, State: hostcheck.Present, Evidence: "tried"},
}}

func hostCells(t *testing.T) []scenario.Cell {
	t.Helper()
	sc, err := scenario.Parse("host.yaml", []byte(hostShapesYAML))
	if err != nil {
		t.Fatal(err)
	}
	return sc.Expand()
}

func reasonOf(t *testing.T, cells []scenario.Cell, id string) string {
	t.Helper()
	for _, c := range cells {
		if c.ID == id {
			return c.NotRun
		}
	}
	t.Fatalf("no cell %s", id)
	return ""
}

func TestMarkHostLimits(t *testing.T) {
	none := func(string) bool { return false }
	all := func(string) bool { return true }
	tests := []struct {
		name string
		host hostFacts
		want map[string]string // cell id → the start of its reason ("" runs)
	}{
		{
			name: "kernel without IPVS, no published images",
			host: hostFacts{kernel: noIPVS, have: none},
			want: map[string]string{
				"plain_glibc_none":           "",
				"ipvs_glibc_none":            "kubeProxy ipvs: kernel lacks IPVS: CONFIG_IP_VS not set",
				"kubedns_grpc-ares_none":     "dns kube-dns: images registry.k8s.io/dns/k8s-dns-kube-dns",
				"ipvs_glibc_grpc-native":     "not applicable:",
				"kubedns_glibc_grpc-native":  "not applicable:",
				"ipvs_grpc-ares_grpc-native": "kubeProxy ipvs: kernel lacks IPVS",
			},
		},
		{
			name: "kube-dns images imported: its cells run",
			host: hostFacts{kernel: noIPVS, have: all},
			want: map[string]string{
				"kubedns_grpc-ares_none": "",
				"ipvs_glibc_none":        "kubeProxy ipvs: kernel lacks IPVS",
			},
		},
		{
			name: "the probe failed: the cells run as planned (and fail, if they must, with the cluster's error)",
			host: hostFacts{err: errors.New("no /proc"), have: none},
			want: map[string]string{
				"plain_glibc_none":       "",
				"ipvs_glibc_none":        "",
				"kubedns_grpc-ares_none": "",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells := hostCells(t)
			markHostLimits(cells, tt.host)
			for id, want := range tt.want {
				got := reasonOf(t, cells, id)
				if (want == "") != (got == "") || !strings.HasPrefix(got, want) {
					t.Errorf("%s: reason %q, want %q…", id, got, want)
				}
			}
		})
	}
}

func TestRecordHost(t *testing.T) {
	var e results.Env
	recordHost(&e, hostFacts{kernel: noIPVS})
	if got := e.Extra["host_IPVS"]; got != "absent: CONFIG_IP_VS not set" {
		t.Errorf("host_IPVS = %q", got)
	}
	if got := e.Extra["host_NFQUEUE"]; got != "present" {
		t.Errorf("host_NFQUEUE = %q", got)
	}
	if got := e.Extra["host_netem"]; !strings.HasPrefix(got, "unknown: ") {
		t.Errorf("host_netem (not probed) = %q", got)
	}
	var failed results.Env
	recordHost(&failed, hostFacts{err: errors.New("permission denied")})
	if got := failed.Extra["host_error"]; got != "hostcheck: permission denied" || len(failed.Extra) != 1 {
		t.Errorf("a failed probe records %v", failed.Extra)
	}
}
