package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Adopted is what the lab may and may not do on a cluster it did not make
// (pkg/cluster/existing: `labrun run --kubeconfig`). A Cluster the lab made
// has none (nil): there it may do everything. The runner reads these
// capabilities instead of asking which provider made the cluster.
type Adopted struct {
	// Namespace holds everything the lab deploys on the cluster (labrun-<run>):
	// cells share it instead of making a namespace each.
	Namespace string
	// Run is the run id every object the lab deploys is labelled with.
	Run string
	// Images are the lab images by name (probe-glibc, probe-musl, labagent),
	// as the nodes hold them or the user's registry serves them; a name
	// missing has no image, and the cells that need it are not run.
	Images map[string]string
	// PullPolicy of every pod the lab deploys: IfNotPresent (a node that
	// holds the image does not pull it).
	PullPolicy corev1.PullPolicy
	// Shape is what the cluster is, as read from its API objects.
	Shape Shape
	// NoNodeAccess says why the Runner cannot run commands on the nodes
	// ("" when it can): no counters, no DNS captures.
	NoNodeAccess string
	// RaceEmulator: the user allowed labagent, which drops DNS packets on
	// their nodes (--allow-race-emulator, with --allow-privileged).
	RaceEmulator bool
	// LabService is a Service the lab deploys in Namespace: a short name
	// the cluster's own DNS answers through the pod's search list.
	LabService string
}

// Shape is a cluster's shape as read from its API objects (and recorded in
// env.json), to be matched against the shape a scenario asks for.
type Shape struct {
	Kubernetes string `json:"kubernetes"`
	// KubeProxyMode is iptables, ipvs, nftables…, "" when none was found;
	// KubeProxySource says where it was read.
	KubeProxyMode   string `json:"kubeProxy"`
	KubeProxySource string `json:"kubeProxySource"`
	// DNSServer is coredns or kube-dns ("" unknown); DNSEndpoints the ready
	// addresses behind kube-system/kube-dns, whose VIP is DNSVIP.
	DNSServer    string `json:"dnsServer"`
	DNSVIP       string `json:"dnsVIP"`
	DNSEndpoints int    `json:"dnsEndpoints"`
	// PodNetworks are the pod networks found by their DaemonSets.
	PodNetworks []string `json:"podNetworks"`
	// ControlPlanes and Workers count the Ready nodes of each role.
	ControlPlanes int `json:"controlPlanes"`
	Workers       int `json:"workers"`
	// Kernels are the nodes' kernel releases, by node.
	Kernels map[string]string `json:"kernels,omitempty"`
	// LabImages are the lab images by name (probe-glibc, probe-musl,
	// labagent) that a node holds or the user's registry serves; a name
	// missing has none.
	LabImages map[string]string `json:"labImages,omitempty"`
	// NotRead are the facts that could not be read, with why.
	NotRead []string `json:"notRead,omitempty"`
}

// Facts are the shape as env.json's extra keys.
func (s Shape) Facts() map[string]string {
	f := map[string]string{
		"provider":        "existing",
		"kubeProxy":       s.KubeProxyMode,
		"kubeProxySource": s.KubeProxySource,
		"dns":             s.DNSServer,
		"dns.vip":         s.DNSVIP,
		"dns.endpoints":   fmt.Sprint(s.DNSEndpoints),
		"podNetwork":      strings.Join(s.PodNetworks, ","),
		"nodes":           fmt.Sprintf("%d control-plane, %d workers (Ready)", s.ControlPlanes, s.Workers),
	}
	for n, ref := range s.LabImages {
		f["image."+n] = ref
	}
	for n, k := range s.Kernels {
		f["kernel."+n] = k
	}
	if len(s.NotRead) > 0 {
		f["notRead"] = strings.Join(s.NotRead, "; ")
	}
	return f
}

// ExistingProvider is a Provider of one cluster the lab did not make: its
// Create makes nothing but the lab's namespace (and, when allowed, its node
// pods), its Delete deletes only that and checks nothing is left.
type ExistingProvider interface {
	Provider
	// ReadShape reads what the cluster is, before anything is made.
	ReadShape(ctx context.Context) (Shape, error)
	// Allowed says what the user allowed: node pods (privileged) and the
	// race emulator.
	Allowed() (privileged, raceEmulator bool)
}

// NodeAccessError is a Runner's refusal to run a command on a node: on an
// existing cluster without --allow-privileged there is no way onto the
// nodes. Readers of node counters turn it into "not read: …", never into
// zero counters.
type NodeAccessError struct{ Reason string }

func (e *NodeAccessError) Error() string { return "not read: " + e.Reason }

// IsNodeAccess reports whether err is (or wraps) a NodeAccessError.
func IsNodeAccess(err error) bool { return NotRead(err) != "" }

// NotRead is the sentence of the NodeAccessError err wraps ("not read:
// needs --allow-privileged …"), "" if it wraps none.
func NotRead(err error) string {
	var e *NodeAccessError
	if errors.As(err, &e) {
		return e.Error()
	}
	return ""
}

// DeniedRunner is the Runner of a cluster whose nodes the lab may not reach:
// every command fails with a NodeAccessError giving reason.
func DeniedRunner(reason string) Runner {
	return RunnerFunc(func(context.Context, string, io.Reader, ...string) ([]byte, error) {
		return nil, &NodeAccessError{Reason: reason}
	})
}
