package addons

import (
	"slices"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/probe"
)

func TestGRPCServerObjects(t *testing.T) {
	d, svc := GRPCServerObjects("labrun.local/probe-glibc:abc")
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "labrun.local/probe-glibc:abc" || c.ImagePullPolicy != "Never" {
		t.Errorf("container image %q pull %q, want the loaded image, never pulled", c.Image, c.ImagePullPolicy)
	}
	if !slices.Equal(c.Args, []string{"--serve-grpc", "[::]:50051"}) {
		t.Errorf("args %q", c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != GRPCPort {
		t.Errorf("readiness probe %+v, want a TCP check of port %d", c.ReadinessProbe, GRPCPort)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if svc.Spec.Selector[k] != v || d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not select the server's pods", k, v)
		}
	}
	// Probes pass no --grpc-port: the Service must be on the probe's default.
	if def := probe.Defaults().GRPCPort; def != GRPCPort {
		t.Errorf("the probe calls port %d by default, the server listens on %d", def, GRPCPort)
	}
	if p := svc.Spec.Ports[0]; p.Port != GRPCPort || p.TargetPort.IntValue() != GRPCPort || p.Protocol != "TCP" {
		t.Errorf("service port %+v", p)
	}
	// The target must be svc.namespace of the Service, short enough that
	// ndots:5 sends it through the search list.
	if GRPCTarget != svc.Name+"."+svc.Namespace || strings.Count(GRPCTarget, ".") >= 5 {
		t.Errorf("GRPCTarget %q does not name the Service %s/%s through the search list", GRPCTarget, svc.Namespace, svc.Name)
	}
}
