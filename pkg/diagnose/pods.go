package diagnose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/workload"
)

// Labels on everything diagnose makes, so that it can be found and swept
// without any state: the namespace and every pod carry LabelApp and LabelID.
const (
	LabelApp         = workload.LabelApp
	AppDiagnose      = "labrun-diagnose"
	LabelID          = "labrun.dev/diagnose"
	LabelRole        = "labrun.dev/diagnose-role"
	RoleProbe        = "probe"
	RoleCounters     = "counters"
	AnnotationNode   = "labrun.dev/node"
	AnnotationTarget = "labrun.dev/target"
	AnnotationVar    = "labrun.dev/variant"
	// NamespacePrefix starts the one namespace a diagnosis makes.
	NamespacePrefix = "labrun-diag-"
	// ProbeNames are looked up by every probe: a Service every cluster has,
	// by a short name, so the search list is walked (ndots:5: two names,
	// A and AAAA each, per lookup) as an application's lookup would.
	ProbeNames = "short:kubernetes.default"
)

// Variant is a resolver and the resolv.conf options it runs with.
type Variant struct {
	Name    string   `json:"name"` // glibc, glibc+single-request-reopen…
	Backend string   `json:"backend"`
	Options []string `json:"options,omitempty"`
}

// Variants are what diagnose measures: glibc bare and with the two options
// that the lab shows fix it under the race, musl, which ignores them, and
// Go's resolver.
var Variants = []Variant{
	{Name: "glibc", Backend: mitigation.Glibc},
	{Name: "glibc+single-request-reopen", Backend: mitigation.Glibc, Options: []string{"single-request-reopen"}},
	{Name: "glibc+use-vc", Backend: mitigation.Glibc, Options: []string{"use-vc"}},
	{Name: "musl", Backend: mitigation.Musl},
	// Go's own resolver sends A and AAAA from separate sockets (two
	// 5-tuples): a control that the race should spare.
	{Name: "go", Backend: mitigation.GoResolver},
}

// Target is where a probe's queries go.
type Target struct {
	Name string `json:"name"` // vip, dns-pod, nodelocal
	IP   string `json:"ip"`
	// Pod is the DNS pod behind a dns-pod target.
	Pod string `json:"pod,omitempty"`
}

// Target kinds. Only the VIP goes through kube-proxy's DNAT: a delay seen
// on the VIP and not on the pod IPs places it on the DNAT.
const (
	TargetVIP       = "vip"
	TargetDNSPod    = "dns-pod"
	TargetNodeLocal = "nodelocal"
)

// Probe is one probe pod of the plan.
type Probe struct {
	Pod     string  `json:"pod"`
	Node    string  `json:"node"`
	Variant Variant `json:"variant"`
	Target  Target  `json:"target"`
	// RetryUS is how long a lookup with a resent query takes at least, from
	// the options the pod was admitted with (RetryThresholdUS); 0 until then.
	RetryUS int64 `json:"retryThresholdUS,omitempty"`
}

// Load bounds a measurement: it must never be a load test of a user's
// cluster.
type Load struct {
	Duration    time.Duration `json:"duration"`
	Rate        float64       `json:"ratePerPod"` // lookups per second per probe pod
	Concurrency int           `json:"concurrency"`
	Nodes       int           `json:"nodes"` // how many nodes are probed at most
}

// DefaultLoad is 20 s at 10 lookups/s per pod on at most 2 nodes.
var DefaultLoad = Load{Duration: 20 * time.Second, Rate: 10, Concurrency: 2, Nodes: 2}

// Images are the probe images by back end.
type Images struct {
	Glibc, Musl string
	PullPolicy  corev1.PullPolicy
}

// ProbeNodes picks the nodes to probe: ready ones, workers first, by name,
// at most n.
func ProbeNodes(nodes []Node, n int) []string {
	var ready []Node
	for _, nd := range nodes {
		if nd.Ready {
			ready = append(ready, nd)
		}
	}
	slices.SortStableFunc(ready, func(a, b Node) int {
		if a.ControlPlane != b.ControlPlane {
			if a.ControlPlane {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	var out []string
	for _, nd := range ready {
		if len(out) == n {
			break
		}
		out = append(out, nd.Name)
	}
	return out
}

// PlanProbes lists the probe pods: on each node, bare glibc against the VIP,
// each ready DNS pod and the NodeLocal address (to place a delay on its
// path), and every other variant against the VIP (the path applications
// use).
func PlanProbes(f Facts, nodes []string) []Probe {
	targets := []Target{{Name: TargetVIP, IP: f.DNS.VIP}}
	for _, e := range f.DNS.Endpoints {
		if e.Ready {
			targets = append(targets, Target{Name: TargetDNSPod, IP: e.IP, Pod: e.Pod})
		}
	}
	if f.NodeLocal != nil && f.NodeLocal.ListenIP != "" {
		targets = append(targets, Target{Name: TargetNodeLocal, IP: f.NodeLocal.ListenIP})
	}
	var out []Probe
	for ni, node := range nodes {
		for vi, v := range Variants {
			for ti, t := range targets {
				if vi > 0 && t.Name != TargetVIP {
					continue
				}
				out = append(out, Probe{Pod: fmt.Sprintf("probe-n%d-v%d-t%d", ni, vi, ti), Node: node, Variant: v, Target: t})
			}
		}
	}
	return out
}

// NamespaceObject is the diagnosis's namespace.
func NamespaceObject(id string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: NamespacePrefix + id, Labels: labels(id, "")},
	}
}

func labels(id, role string) map[string]string {
	l := map[string]string{LabelApp: AppDiagnose, LabelID: id}
	if role != "" {
		l[LabelRole] = role
	}
	return l
}

// deadline bounds every pod's life on the node whatever happens to
// diagnose: the kubelet ends it (activeDeadlineSeconds) even when no one is
// left to delete it.
func deadline(l Load) *int64 { return ptr.To(int64(l.Duration.Seconds()) + 120) }

// restricted is a container security context that PodSecurity's
// "restricted" level admits: the probes need no privilege.
func restricted() *corev1.SecurityContext { return workload.Restricted() }

var smallResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
}

// ProbePod is the pod of one probe. A VIP target keeps the cluster's own
// resolv.conf (dnsPolicy ClusterFirst, as applications have it); any other
// target gets the same search list and ndots with that one nameserver.
func ProbePod(id string, p Probe, img Images, l Load, clusterDomain string) (*corev1.Pod, error) {
	image := img.Glibc
	if p.Variant.Backend == mitigation.Musl {
		image = img.Musl
	}
	if image == "" {
		return nil, fmt.Errorf("probe pod %s: no image for the %s back end", p.Pod, p.Variant.Backend)
	}
	if p.Target.IP == "" {
		return nil, fmt.Errorf("probe pod %s: target %s has no address", p.Pod, p.Target.Name)
	}
	ns := NamespacePrefix + id
	dnsConfig := &corev1.PodDNSConfig{}
	policy := corev1.DNSClusterFirst
	if p.Target.Name != TargetVIP {
		policy = corev1.DNSNone
		dnsConfig.Nameservers = []string{p.Target.IP}
		dnsConfig.Searches = []string{ns + ".svc." + clusterDomain, "svc." + clusterDomain, clusterDomain}
		dnsConfig.Options = append(dnsConfig.Options, corev1.PodDNSConfigOption{Name: "ndots", Value: ptr.To("5")})
	}
	for _, o := range p.Variant.Options {
		dnsConfig.Options = append(dnsConfig.Options, corev1.PodDNSConfigOption{Name: o})
	}
	if len(dnsConfig.Options) == 0 && len(dnsConfig.Nameservers) == 0 {
		dnsConfig = nil
	}
	args := append(mitigation.ProbeFlags(p.Variant.Backend),
		"--names="+ProbeNames,
		"--rate="+strconv.FormatFloat(l.Rate, 'f', -1, 64),
		"--concurrency="+strconv.Itoa(l.Concurrency),
		"--duration="+l.Duration.String(),
		"--cell=diagnose-"+id+"/"+p.Target.Name,
		"--mitigation="+p.Variant.Name,
	)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Pod, Namespace: ns, Labels: labels(id, RoleProbe),
			Annotations: map[string]string{AnnotationNode: p.Node, AnnotationVar: p.Variant.Name, AnnotationTarget: p.Target.Name + " " + p.Target.IP},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			NodeName:                      p.Node,
			ActiveDeadlineSeconds:         deadline(l),
			TerminationGracePeriodSeconds: ptr.To(int64(2)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			DNSPolicy:                     policy,
			DNSConfig:                     dnsConfig,
			// nodeName skips the scheduler, so NoSchedule taints do not
			// matter; a NoExecute taint would evict the probe mid-burst.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            workload.ProbeContainer,
				Image:           image,
				ImagePullPolicy: img.PullPolicy,
				Args:            args,
				Env:             downwardEnv(),
				SecurityContext: restricted(),
				Resources:       smallResources,
			}},
		},
	}, nil
}

func downwardEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	return []corev1.EnvVar{field("POD_NAME", "metadata.name"), field("NODE_NAME", "spec.nodeName")}
}

// CounterMark starts each snapshot in a counter pod's log: "@ <unix ns>".
const CounterMark = "@"

// counterScript prints the node's conntrack statistics every second, each
// snapshot after a CounterMark line with the time, so the log alone gives
// the counters before and after the probes' window (no exec needed).
const counterScript = `while :; do echo "@ $(date +%s%N)"; cat /proc/net/stat/nf_conntrack || exit 1; sleep 1; done`

// CounterPod reads the conntrack counters of node's network namespace. It
// needs hostNetwork (so it sees the node's /proc/net/stat/nf_conntrack)
// and nothing else: no privilege, no capability. PodSecurity's baseline
// level refuses hostNetwork, hence --allow-privileged.
func CounterPod(id, node string, index int, img Images, l Load) (*corev1.Pod, error) {
	if img.Glibc == "" {
		return nil, fmt.Errorf("counter pod: no image (the glibc probe image has the shell it needs)")
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("counters-n%d", index), Namespace: NamespacePrefix + id, Labels: labels(id, RoleCounters),
			Annotations: map[string]string{AnnotationNode: node},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			NodeName:                      node,
			HostNetwork:                   true,
			DNSPolicy:                     corev1.DNSDefault,
			ActiveDeadlineSeconds:         ptr.To(*deadline(l) + 60),
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            "counters",
				Image:           img.Glibc,
				ImagePullPolicy: img.PullPolicy,
				Command:         []string{"/bin/sh", "-c", counterScript},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				Resources: smallResources,
			}},
		},
	}, nil
}
