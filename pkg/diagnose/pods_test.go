package diagnose

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestProbeNodes(t *testing.T) {
	ns := []Node{{Name: "cp", Ready: true, ControlPlane: true}, {Name: "w2", Ready: true}, {Name: "w1", Ready: true}, {Name: "w0"}}
	if got := ProbeNodes(ns, 2); !reflect.DeepEqual(got, []string{"w1", "w2"}) {
		t.Errorf("got %v: ready workers first, by name", got)
	}
	if got := ProbeNodes(ns, 5); !reflect.DeepEqual(got, []string{"w1", "w2", "cp"}) {
		t.Errorf("got %v: the control plane last, a node that is not ready never", got)
	}
}

func TestPlanProbes(t *testing.T) {
	f := Facts{DNS: dns(2), NodeLocal: &NodeLocal{ListenIP: "169.254.20.10"}}
	f.DNS.Endpoints = append(f.DNS.Endpoints, DNSEndpoint{IP: "10.244.9.9", Ready: false})
	ps := PlanProbes(f, []string{"w1", "w2"})
	// Per node: glibc × (VIP, 2 ready DNS pods, NodeLocal) + 4 variants × VIP.
	if len(ps) != 2*(4+4) {
		t.Fatalf("%d probes: %+v", len(ps), ps)
	}
	names := map[string]bool{}
	for _, p := range ps {
		if names[p.Pod] {
			t.Errorf("pod name %s twice", p.Pod)
		}
		names[p.Pod] = true
		if p.Target.IP == "10.244.9.9" {
			t.Errorf("a DNS pod that is not ready is probed: %+v", p)
		}
		if p.Variant.Name != "glibc" && p.Target.Name != TargetVIP {
			t.Errorf("%s probes %s: only bare glibc places the delay on a path", p.Variant.Name, p.Target.Name)
		}
	}
}

func TestProbePod(t *testing.T) {
	img := Images{Glibc: "labrun/probe-glibc:abc", Musl: "labrun/probe-musl:def", PullPolicy: corev1.PullIfNotPresent}
	vip := Probe{Pod: "probe-n0-v1-t0", Node: "w1", Variant: Variants[1], Target: Target{Name: TargetVIP, IP: "10.96.0.10"}}
	p, err := ProbePod("x", vip, img, DefaultLoad, "cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	if p.Namespace != "labrun-diag-x" || p.Spec.NodeName != "w1" || p.Spec.DNSPolicy != corev1.DNSClusterFirst ||
		p.Spec.ActiveDeadlineSeconds == nil || *p.Spec.ActiveDeadlineSeconds != 140 || p.Labels[LabelID] != "x" || p.Labels[LabelRole] != RoleProbe {
		t.Errorf("VIP pod: %+v", p)
	}
	if p.Spec.DNSConfig == nil || len(p.Spec.DNSConfig.Nameservers) != 0 || p.Spec.DNSConfig.Options[0].Name != "single-request-reopen" {
		t.Errorf("VIP pod keeps the cluster's resolv.conf plus the option: %+v", p.Spec.DNSConfig)
	}
	c := p.Spec.Containers[0]
	if c.Image != img.Glibc || !slices.Contains(c.Args, "--backend=glibc") || !slices.Contains(c.Args, "--duration=20s") || c.SecurityContext.RunAsNonRoot == nil {
		t.Errorf("container: %+v", c)
	}

	direct := Probe{Pod: "probe-n0-v3-t1", Node: "w1", Variant: Variants[3], Target: Target{Name: TargetDNSPod, IP: "10.244.1.3"}}
	p, err = ProbePod("x", direct, img, DefaultLoad, "corp.local")
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.PodDNSConfig{Nameservers: []string{"10.244.1.3"}, Searches: []string{"labrun-diag-x.svc.corp.local", "svc.corp.local", "corp.local"}}
	if p.Spec.DNSPolicy != corev1.DNSNone || !reflect.DeepEqual(p.Spec.DNSConfig.Nameservers, want.Nameservers) || !reflect.DeepEqual(p.Spec.DNSConfig.Searches, want.Searches) ||
		p.Spec.DNSConfig.Options[0].Name != "ndots" || *p.Spec.DNSConfig.Options[0].Value != "5" || p.Spec.Containers[0].Image != img.Musl {
		t.Errorf("direct pod: %v %+v %s", p.Spec.DNSPolicy, p.Spec.DNSConfig, p.Spec.Containers[0].Image)
	}

	if _, err := ProbePod("x", direct, Images{Glibc: "g"}, DefaultLoad, "cluster.local"); err == nil || !strings.Contains(err.Error(), "no image for the musl back end") {
		t.Errorf("musl without its image: %v", err)
	}
}

func TestCounterPod(t *testing.T) {
	p, err := CounterPod("x", "w1", 0, Images{Glibc: "g"}, DefaultLoad)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Spec.Containers[0]
	if !p.Spec.HostNetwork || c.SecurityContext.Privileged != nil || p.Labels[LabelRole] != RoleCounters || !strings.Contains(c.Command[2], "/proc/net/stat/nf_conntrack") {
		t.Errorf("counter pod: %+v", p)
	}
}
