// Package scenario is labrun's scenario file: the schema, strict YAML loading
// with line numbers, defaults, validation that reports every problem at once,
// and the expansion of a scenario into a matrix of cells.
//
// A scenario names cluster shapes, resolver back ends, mitigation sets, names,
// loads and chaos; each combination is a cell. Cells that share a cluster shape
// share one cluster.
package scenario

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	APIVersion = "labrun.dev/v1alpha1"
	Kind       = "Scenario"
)

// SupportedKubernetes lists the Kubernetes versions a scenario may ask for.
// TODO(images): take this list from pkg/images once the image builder exports
// the versions it can build; until then only the default is offered.
var SupportedKubernetes = []string{"v1.36.1"}

// DefaultKubernetes is the version a cluster gets when it names none.
const DefaultKubernetes = "v1.36.1"

// PublishedNodeKubernetes is the Kubernetes of the published node image
// (nodeImage: published): kind's own kindest/node at the digest its Go
// module (sigs.k8s.io/kind, go.mod) makes its default, pinned in
// images/published.yaml.
const PublishedNodeKubernetes = "v1.37.0"

// Axis values a cluster shape may take (issue 6 makes each of them run).
var (
	PodNetworks = []string{"default", "kube-router", "calico", "weave"}
	// NodeImages: built here from source (pkg/images), or kind's published
	// kindest/node (pulled where a registry is reachable, or imported), whose
	// default pod network is kindnet and whose Kubernetes is
	// PublishedNodeKubernetes.
	NodeImages  = []string{"built", "published"}
	KubeProxies = []string{"iptables", "nftables", "ipvs"}
	DNSServers  = []string{"coredns", "kube-dns", "dnsmasq-coredns"}
	NameKinds   = []string{"short", "external", "fqdn"}
	// EmulatorProfiles name the kernels the race emulator imitates.
	EmulatorProfiles = []string{"pre-5.0", "5.0-5.5"}
)

// Scenario is one scenario file.
type Scenario struct {
	APIVersion string    `yaml:"apiVersion" json:"apiVersion"`
	Kind       string    `yaml:"kind" json:"kind"`
	Metadata   Metadata  `yaml:"metadata" json:"metadata"`
	Clusters   []Cluster `yaml:"clusters" json:"clusters"`
	Workload   Workload  `yaml:"workload" json:"workload"`
	// Chaos is one chaos setting or a list of them (an axis); {} is the bare kernel.
	Chaos   []Chaos `yaml:"chaos" json:"chaos" labrun:"oneOrMany"`
	Repeats int     `yaml:"repeats" json:"repeats"`
	// CellsAtOnce is how many cells of a cluster shape run side by side,
	// each on workers of its own (the cluster has that many times the
	// shape's workers); 0 or 1 is one at a time. `labrun run
	// --cells-at-once` overrides it.
	CellsAtOnce int `yaml:"cellsAtOnce,omitempty" json:"cellsAtOnce,omitempty"`
	// Images says where published images come from when the lab lacks them.
	Images Images `yaml:"images,omitempty" json:"images,omitempty"`
	// Expect is what every run must show; a run that breaks it exits 3.
	Expect Expect `yaml:"expect,omitempty" json:"expect,omitempty"`

	src source // where each field was written, for messages
}

// Images is where the published images (images/published.yaml) a shape
// needs come from.
type Images struct {
	// Mirror is a registry mirror, HOST[:PORT] (http://HOST[:PORT] for plain
	// HTTP), holding them under their repository paths: the run pulls what
	// its shapes need through it before any cluster.
	Mirror string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
}

// Metadata names and describes the scenario.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Cluster is a cluster shape.
type Cluster struct {
	Name       string `yaml:"name" json:"name"`
	Kubernetes string `yaml:"kubernetes" json:"kubernetes"`
	// NodeImage is where the kind node image comes from (NodeImages).
	NodeImage  string `yaml:"nodeImage" json:"nodeImage"`
	Nodes      Nodes  `yaml:"nodes" json:"nodes"`
	PodNetwork string `yaml:"podNetwork" json:"podNetwork"`
	KubeProxy  string `yaml:"kubeProxy" json:"kubeProxy"`
	DNS        DNS    `yaml:"dns" json:"dns"`
	// Pinned says which fields the file wrote rather than left to the
	// defaults: an existing cluster is held to those only.
	Pinned Pinned `yaml:"-" json:"-"`
}

// Pinned marks the cluster fields a scenario file wrote itself.
type Pinned struct {
	Kubernetes, ControlPlanes bool
}

// Nodes is how many nodes of each role a cluster has.
type Nodes struct {
	ControlPlanes int `yaml:"controlPlanes" json:"controlPlanes"`
	Workers       int `yaml:"workers" json:"workers"`
}

// DNS is the cluster DNS service.
type DNS struct {
	Server   string `yaml:"server" json:"server"`
	Replicas int    `yaml:"replicas" json:"replicas"`
}

// Workload is what the probe pods do.
type Workload struct {
	Resolvers []string `yaml:"resolvers" json:"resolvers"`
	// Mitigations lists mitigation sets, each "a" or "a+b".
	Mitigations []string `yaml:"mitigations" json:"mitigations"`
	// Names is one list of names, or a list of such lists (an axis).
	Names [][]Name `yaml:"names" json:"names" labrun:"oneOrMany"`
	// Load is one load or a list of them (an axis).
	Load []Load `yaml:"load" json:"load" labrun:"oneOrMany"`
}

// Name is one name the probe looks up.
type Name struct {
	Name string `yaml:"name" json:"name"`
	Kind string `yaml:"kind" json:"kind"` // short | external | fqdn
}

// Load is how hard the probes work.
type Load struct {
	PodsPerNode int      `yaml:"podsPerNode" json:"podsPerNode"` // probe pods on each worker
	Concurrency int      `yaml:"concurrency" json:"concurrency"` // lookups in flight per pod
	Rate        Rate     `yaml:"rate" json:"rate"`               // lookups per second per pod
	Duration    Duration `yaml:"duration" json:"duration"`       // how long each probe runs
}

// Chaos is the faults a cell runs under.
type Chaos struct {
	RaceEmulator *RaceEmulator `yaml:"raceEmulator,omitempty" json:"raceEmulator,omitempty"`
}

// RaceEmulator imitates the drops of kernels with the conntrack insert race.
type RaceEmulator struct {
	Profile string   `yaml:"profile" json:"profile"` // pre-5.0 | 5.0-5.5
	Window  Duration `yaml:"window" json:"window"`   // same 5-tuple within this → candidate drop
	// Probability of a drop; nil means the profile's: 1 for pre-5.0,
	// 1 − 1/replicas for 5.0-5.5.
	Probability *float64 `yaml:"probability,omitempty" json:"probability,omitempty"`
}

// Rate is lookups per second, written "50/s", "3000/m" or "50".
type Rate float64

// ParseRate parses "N/s", "N/m" or a bare N (per second).
func ParseRate(s string) (Rate, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: want N/s, N/m or N", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s":
	case "m":
		v /= 60
	default:
		return 0, fmt.Errorf("rate %q: unit %q, want s or m", s, unit)
	}
	return Rate(v), nil
}

func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }

// UnmarshalYAML parses a Rate from its text.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML writes the Rate as text.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// MarshalText lets JSON carry the same text.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Duration is a time.Duration written as Go duration text ("60s", "1ms").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a Duration from its text.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("duration %q: want Go duration text such as 60s or 1ms", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText lets JSON carry the same text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
