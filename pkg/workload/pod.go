// Package workload turns matrix cells into probe pods: the pod-level
// mitigations of the catalog (dnsConfig options, dnsPolicy, environment, the
// name list) applied to a pod spec (pod.go, pure), and the cell's namespace
// and pods deployed, awaited and deleted (deploy.go). The mitigation catalog
// itself is pkg/mitigation.
package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/scenario"
)

// Labels and annotations on every probe pod. Cell ids can exceed the 63
// characters of a label value, so the label carries a hash and the
// annotation the id itself.
const (
	LabelApp        = "app.kubernetes.io/name"
	AppProbe        = "labrun-probe"
	LabelRun        = "labrun.dev/run"
	LabelCell       = "labrun.dev/cell-hash"
	LabelBackend    = "labrun.dev/backend"
	AnnotationCell  = "labrun.dev/cell"
	AnnotationMitig = "labrun.dev/mitigation"
	ProbeContainer  = "probe"
)

// DefaultClusterDomain is the cluster's DNS domain (kind's default).
const DefaultClusterDomain = "cluster.local"

// PodOptions is what a probe pod needs beyond its cell.
type PodOptions struct {
	Run       string // the run id, a label value
	Namespace string
	Index     int    // the pod's number within the cell, for its name
	Node      string // pin the pod to this node (spec.nodeName); "" lets the scheduler choose
	// Image is the probe image for the cell's back end.
	Image         string
	ClusterDomain string // default DefaultClusterDomain
}

// CellHash is a short, label-safe digest of a cell id.
func CellHash(cellID string) string {
	sum := sha256.Sum256([]byte(cellID))
	return hex.EncodeToString(sum[:6])
}

// ProbePod returns the pod that runs cell's probe. It fails for a cell that
// is not to be run, and for a set with a pod-level mitigation it does not
// know how to apply.
func ProbePod(cell scenario.Cell, o PodOptions) (*corev1.Pod, error) {
	if !cell.Runs() {
		return nil, fmt.Errorf("probe pod for cell %s: the cell is not run: %s", cell.ID, cell.NotRun)
	}
	if o.Image == "" || o.Namespace == "" {
		return nil, fmt.Errorf("probe pod for cell %s: image and namespace are required", cell.ID)
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	spec := podSpec{policy: corev1.DNSClusterFirst, names: cell.Names.Names}
	for _, m := range cell.Mitigations.PodLevel() {
		if err := spec.apply(m, o.Namespace, domain); err != nil {
			return nil, fmt.Errorf("probe pod for cell %s: %w", cell.ID, err)
		}
	}
	hash := CellHash(cell.ID)
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("probe-%s-%d", hash, o.Index),
			Namespace: o.Namespace,
			Labels: map[string]string{
				LabelApp:     AppProbe,
				LabelRun:     o.Run,
				LabelCell:    hash,
				LabelBackend: cell.Backend,
			},
			Annotations: map[string]string{
				AnnotationCell:  cell.ID,
				AnnotationMitig: cell.MitigationID(),
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			NodeName:                      o.Node,
			DNSPolicy:                     spec.policy,
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false), // keep the environment to what the probe reads
			Containers: []corev1.Container{{
				Name:            ProbeContainer,
				Image:           o.Image,
				ImagePullPolicy: corev1.PullNever, // the lab preloads images; nothing is pulled
				Args:            probeArgs(cell, spec.names),
				Env:             append(downwardEnv(), spec.env...),
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("16Mi"),
					},
				},
			}},
		},
	}
	if len(spec.options) > 0 {
		pod.Spec.DNSConfig = &corev1.PodDNSConfig{Options: spec.options}
	}
	return pod, nil
}

// podSpec collects what the pod-level mitigations change.
type podSpec struct {
	policy  corev1.DNSPolicy
	options []corev1.PodDNSConfigOption
	env     []corev1.EnvVar
	names   []scenario.Name
}

func (p *podSpec) apply(m mitigation.Mitigation, namespace, domain string) error {
	switch m.Where {
	case mitigation.PodDNSConfig:
		opt := corev1.PodDNSConfigOption{Name: m.Option}
		if m.OptionValue != "" {
			opt.Value = ptr.To(m.OptionValue)
		}
		p.options = append(p.options, opt)
	case mitigation.PodDNSPolicy:
		if m.ID != "dnspolicy-default" {
			return fmt.Errorf("no dnsPolicy known for mitigation %s", m.ID)
		}
		p.policy = corev1.DNSDefault
	case mitigation.PodEnv:
		if m.ID != "grpc-native" {
			return fmt.Errorf("no environment known for mitigation %s", m.ID)
		}
		p.env = append(p.env, corev1.EnvVar{Name: "GRPC_DNS_RESOLVER", Value: "native"})
	case mitigation.NameList:
		if m.ID != "fqdn" {
			return fmt.Errorf("no name-list change known for mitigation %s", m.ID)
		}
		out := make([]scenario.Name, len(p.names))
		for i, n := range p.names {
			out[i] = scenario.Name{Name: FQDN(n, namespace, domain), Kind: "fqdn"}
		}
		p.names = out
	default:
		return fmt.Errorf("mitigation %s changes %s, not the pod", m.ID, m.Where)
	}
	return nil
}

// FQDN is the absolute form of a name: what the fqdn mitigation looks up.
// Short names are taken as Kubernetes service names: "svc" is in the pod's
// namespace, "svc.ns" gets ".svc.DOMAIN", "svc.ns.svc" gets ".DOMAIN".
func FQDN(n scenario.Name, namespace, domain string) string {
	name := n.Name
	if strings.HasSuffix(name, ".") {
		return name
	}
	if n.Kind == "short" {
		labels := strings.Split(name, ".")
		switch {
		case len(labels) == 1:
			name += "." + namespace + ".svc." + domain
		case len(labels) == 2:
			name += ".svc." + domain
		case len(labels) == 3 && labels[2] == "svc":
			name += "." + domain
		}
	}
	return name + "."
}

// probeArgs are cmd/probe's flags for the cell.
func probeArgs(c scenario.Cell, names []scenario.Name) []string {
	list := make([]string, len(names))
	for i, n := range names {
		list[i] = n.Kind + ":" + n.Name
	}
	return append(mitigation.ProbeFlags(c.Backend),
		"--names="+strings.Join(list, ","),
		"--rate="+strconv.FormatFloat(float64(c.Load.Rate), 'f', -1, 64),
		"--concurrency="+strconv.Itoa(c.Load.Concurrency),
		"--duration="+c.Load.Duration.String(),
		"--cell="+c.ID,
		"--mitigation="+c.MitigationID(),
	)
}

// downwardEnv gives the probe its pod and node names (cmd/probe reads
// POD_NAME and NODE_NAME) from the downward API.
func downwardEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	return []corev1.EnvVar{field("POD_NAME", "metadata.name"), field("NODE_NAME", "spec.nodeName")}
}

// Namespace is the namespace of a cell's probe pods: a DNS label whatever the
// length of the cell id.
func Namespace(cellID string) string { return "labrun-" + CellHash(cellID) }

// ForExistingCluster makes a probe pod fit a cluster the lab did not make:
// its image pulled as policy says (IfNotPresent: from the nodes, or the
// user's registry), a container PodSecurity's "restricted" level admits,
// any taint tolerated (the pod is pinned by nodeName), and a deadline after
// which the kubelet ends it whatever happens to labrun.
func ForExistingCluster(p *corev1.Pod, pull corev1.PullPolicy, deadline time.Duration) {
	p.Spec.ActiveDeadlineSeconds = ptr.To(int64(deadline.Seconds()))
	p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		c.ImagePullPolicy = pull
		c.SecurityContext = Restricted()
	}
}
