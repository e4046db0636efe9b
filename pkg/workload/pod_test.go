package workload

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"labrun.dev/labrun/pkg/scenario"
)

// cellFor expands a one-resolver, one-set scenario and returns its cell.
func cellFor(t *testing.T, resolver, set string) scenario.Cell {
	t.Helper()
	s, err := scenario.Parse("t.yaml", []byte(`apiVersion: labrun.dev/v1alpha1
kind: Scenario
metadata: {name: t}
workload:
  resolvers: [`+resolver+`]
  mitigations: ["`+set+`"]
  names:
    - {name: kubernetes.default, kind: short}
    - {name: api.lab.example, kind: external}
  load: {concurrency: 4, rate: 50/s, duration: 20s}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s.Expand()[0]
}

var opts = PodOptions{Run: "run1", Namespace: "labrun-abc", Index: 2, Node: "lab-worker", Image: "labrun/probe-glibc:dev"}

func TestProbePodPerMitigation(t *testing.T) {
	tests := []struct {
		resolver, set string
		policy        corev1.DNSPolicy
		options       string // name[:value] joined with ","
		env           string // extra env NAME=value joined with ","
		backend       string
		names         string
	}{
		{"glibc", "none", corev1.DNSClusterFirst, "", "", "glibc", "short:kubernetes.default,external:api.lab.example"},
		{"glibc", "single-request-reopen", corev1.DNSClusterFirst, "single-request-reopen", "", "glibc", ""},
		{"glibc", "single-request", corev1.DNSClusterFirst, "single-request", "", "glibc", ""},
		{"glibc", "use-vc", corev1.DNSClusterFirst, "use-vc", "", "glibc", ""},
		{"musl", "ndots-1", corev1.DNSClusterFirst, "ndots:1", "", "musl", ""},
		{"glibc", "fqdn", corev1.DNSClusterFirst, "", "", "glibc", "fqdn:kubernetes.default.svc.cluster.local.,fqdn:api.lab.example."},
		{"glibc", "dnspolicy-default", corev1.DNSDefault, "", "", "glibc", ""},
		{"grpc-ares", "grpc-native", corev1.DNSClusterFirst, "", "GRPC_DNS_RESOLVER=native", "grpc-native", ""},
		{"grpc-ares", "single-request-reopen+grpc-native", corev1.DNSClusterFirst, "single-request-reopen", "GRPC_DNS_RESOLVER=native", "grpc-native", ""},
		{"jvm", "single-request-reopen", corev1.DNSClusterFirst, "single-request-reopen", "", "jvm", ""},
		{"jvm-nocache", "use-vc", corev1.DNSClusterFirst, "use-vc", "", "jvm", ""},
		{"glibc", "use-vc+ndots-2+fqdn", corev1.DNSClusterFirst, "ndots:2,use-vc", "", "glibc", "fqdn:kubernetes.default.svc.cluster.local.,fqdn:api.lab.example."},
	}
	for _, tt := range tests {
		t.Run(tt.resolver+"/"+tt.set, func(t *testing.T) {
			cell := cellFor(t, tt.resolver, tt.set)
			pod, err := ProbePod(cell, opts)
			if err != nil {
				t.Fatal(err)
			}
			if pod.Spec.DNSPolicy != tt.policy {
				t.Errorf("dnsPolicy = %s, want %s", pod.Spec.DNSPolicy, tt.policy)
			}
			var options []string
			if pod.Spec.DNSConfig != nil {
				for _, o := range pod.Spec.DNSConfig.Options {
					s := o.Name
					if o.Value != nil {
						s += ":" + *o.Value
					}
					options = append(options, s)
				}
			}
			if got := strings.Join(options, ","); got != tt.options {
				t.Errorf("dnsConfig options = %q, want %q", got, tt.options)
			}
			c := pod.Spec.Containers[0]
			var env []string
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					env = append(env, e.Name+"="+e.Value)
				}
			}
			if got := strings.Join(env, ","); got != tt.env {
				t.Errorf("env = %q, want %q", got, tt.env)
			}
			if !slices.Contains(c.Args, "--backend="+tt.backend) {
				t.Errorf("args %q lack --backend=%s", c.Args, tt.backend)
			}
			if tt.names != "" && !slices.Contains(c.Args, "--names="+tt.names) {
				t.Errorf("args %q lack --names=%s", c.Args, tt.names)
			}
		})
	}
}

func TestProbePodCommon(t *testing.T) {
	cell := cellFor(t, "glibc", "none")
	pod, err := ProbePod(cell, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	wantArgs := []string{"--backend=glibc", "--names=short:kubernetes.default,external:api.lab.example",
		"--rate=50", "--concurrency=4", "--duration=20s", "--cell=default_glibc_none", "--mitigation=none"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q\nwant %q", c.Args, wantArgs)
	}
	if pod.Labels[LabelRun] != "run1" || pod.Labels[LabelCell] != CellHash(cell.ID) || pod.Annotations[AnnotationCell] != cell.ID {
		t.Errorf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	for _, v := range pod.Labels {
		if len(v) > 63 {
			t.Errorf("label value %q longer than 63", v)
		}
	}
	if pod.Spec.NodeName != "lab-worker" || pod.Namespace != "labrun-abc" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("placement: node %q namespace %q restart %q", pod.Spec.NodeName, pod.Namespace, pod.Spec.RestartPolicy)
	}
	if c.ImagePullPolicy != corev1.PullNever || c.Resources.Requests.Cpu().MilliValue() != 10 {
		t.Errorf("pull %s cpu %v", c.ImagePullPolicy, c.Resources.Requests.Cpu())
	}
	downward := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			downward[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if downward["POD_NAME"] != "metadata.name" || downward["NODE_NAME"] != "spec.nodeName" {
		t.Errorf("downward env = %v", downward)
	}
}

func TestProbePodRefuses(t *testing.T) {
	if _, err := ProbePod(cellFor(t, "glibc", "grpc-native"), opts); err == nil || !strings.Contains(err.Error(), "not run") {
		t.Errorf("not-applicable cell: err = %v", err)
	}
	o := opts
	o.Image = ""
	if _, err := ProbePod(cellFor(t, "glibc", "none"), o); err == nil {
		t.Error("no image: want an error")
	}
}

func TestFQDN(t *testing.T) {
	for _, tt := range []struct{ name, kind, want string }{
		{"web", "short", "web.ns.svc.cluster.local."},
		{"kubernetes.default", "short", "kubernetes.default.svc.cluster.local."},
		{"kubernetes.default.svc", "short", "kubernetes.default.svc.cluster.local."},
		{"api.lab.example", "external", "api.lab.example."},
		{"api.lab.example.", "fqdn", "api.lab.example."},
	} {
		if got := FQDN(scenario.Name{Name: tt.name, Kind: tt.kind}, "ns", "cluster.local"); got != tt.want {
			t.Errorf("FQDN(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestProbeImage(t *testing.T) {
	for backend, want := range map[string]string{"glibc": "probe-glibc", "musl": "probe-musl", "grpc-ares": "probe-glibc", "grpc-native": "probe-glibc", "go": "probe-glibc"} {
		if got := ProbeImage(backend); got != want {
			t.Errorf("ProbeImage(%s) = %s, want %s", backend, got, want)
		}
	}
}

func TestNamespace(t *testing.T) {
	long := strings.Repeat("default+nodelocaldns_grpc-ares_grpc-native+single-request-reopen_", 3)
	ns := Namespace(long)
	if len(ns) > 63 || !strings.HasPrefix(ns, "labrun-") || ns == Namespace(long+"x") {
		t.Errorf("Namespace = %q", ns)
	}
}

// The jvm variants are one probe back end with its cache on or off.
func TestProbePodJVMVariant(t *testing.T) {
	for resolver, want := range map[string]string{"jvm": "--jvm-cache=defaults", "jvm-nocache": "--jvm-cache=nocache"} {
		cell := cellFor(t, resolver, "none")
		pod, err := ProbePod(cell, opts)
		if err != nil {
			t.Fatal(err)
		}
		args := pod.Spec.Containers[0].Args
		if !slices.Contains(args, "--backend=jvm") || !slices.Contains(args, want) {
			t.Errorf("%s: args %q lack --backend=jvm and %s", resolver, args, want)
		}
		if img := ProbeImage(cell.Backend); img != "probe-glibc" {
			t.Errorf("%s: image %s, want probe-glibc (it carries the JRE)", resolver, img)
		}
	}
}
