package scenario

import (
	"fmt"
	"time"
)

// Defaults, documented in docs/scenario-reference.md.
const (
	DefaultCluster       = "default"
	DefaultControlPlanes = 1
	DefaultWorkers       = 2
	DefaultPodNetwork    = "default"
	DefaultNodeImage     = "built"
	DefaultKubeProxy     = "iptables"
	DefaultDNSServer     = "coredns"
	DefaultDNSReplicas   = 2 // the DNAT race needs two backends to diverge
	DefaultResolver      = "glibc"
	DefaultMitigation    = "none"
	DefaultPodsPerNode   = 1
	DefaultConcurrency   = 4
	DefaultRate          = Rate(50)
	DefaultDuration      = Duration(60 * time.Second)
	DefaultProfile       = "5.0-5.5"
	DefaultWindow        = Duration(time.Millisecond)
	DefaultRepeats       = 1
)

// DefaultNames are looked up when a scenario names none: one in-cluster name
// through the search list, one name of the lab's synthetic outside zone.
var DefaultNames = []Name{
	{Name: "kubernetes.default", Kind: "short"},
	{Name: "api.lab.example", Kind: "external"},
}

// setDefaults fills every field the file left out. Counts written as 0 on
// purpose (workers: 0) are kept: the source knows what was written.
func (s *Scenario) setDefaults() {
	if len(s.Clusters) == 0 {
		s.Clusters = []Cluster{{}}
	}
	for i := range s.Clusters {
		c := &s.Clusters[i]
		p := fmt.Sprintf("clusters[%d]", i)
		if c.Name == "" && len(s.Clusters) == 1 {
			c.Name = DefaultCluster
		}
		c.Pinned = Pinned{Kubernetes: c.Kubernetes != "", ControlPlanes: s.src.has(p + ".nodes.controlPlanes")}
		c.NodeImage = or(c.NodeImage, DefaultNodeImage)
		if c.NodeImage == "published" {
			c.Kubernetes = or(c.Kubernetes, PublishedNodeKubernetes)
		}
		c.Kubernetes = or(c.Kubernetes, DefaultKubernetes)
		if !c.Pinned.ControlPlanes {
			c.Nodes.ControlPlanes = DefaultControlPlanes
		}
		if !s.src.has(p + ".nodes.workers") {
			c.Nodes.Workers = DefaultWorkers
		}
		c.PodNetwork = or(c.PodNetwork, DefaultPodNetwork)
		c.KubeProxy = or(c.KubeProxy, DefaultKubeProxy)
		c.DNS.Server = or(c.DNS.Server, DefaultDNSServer)
		if !s.src.has(p + ".dns.replicas") {
			c.DNS.Replicas = DefaultDNSReplicas
		}
	}
	w := &s.Workload
	if len(w.Resolvers) == 0 {
		w.Resolvers = []string{DefaultResolver}
	}
	if len(w.Mitigations) == 0 {
		w.Mitigations = []string{DefaultMitigation}
	}
	if len(w.Names) == 0 {
		w.Names = [][]Name{append([]Name(nil), DefaultNames...)}
	}
	if len(w.Load) == 0 {
		w.Load = []Load{{}}
	}
	for i := range w.Load {
		l := &w.Load[i]
		if l.PodsPerNode == 0 && !s.src.has(s.src.elem("workload.load", i)+".podsPerNode") {
			l.PodsPerNode = DefaultPodsPerNode
		}
		if l.Concurrency == 0 && !s.src.has(s.src.elem("workload.load", i)+".concurrency") {
			l.Concurrency = DefaultConcurrency
		}
		if l.Rate == 0 && !s.src.has(s.src.elem("workload.load", i)+".rate") {
			l.Rate = DefaultRate
		}
		if l.Duration == 0 && !s.src.has(s.src.elem("workload.load", i)+".duration") {
			l.Duration = DefaultDuration
		}
	}
	if len(s.Chaos) == 0 {
		s.Chaos = []Chaos{{}}
	}
	for i := range s.Chaos {
		if e := s.Chaos[i].RaceEmulator; e != nil {
			e.Profile = or(e.Profile, DefaultProfile)
			if e.Window == 0 && !s.src.has(s.src.elem("chaos", i)+".raceEmulator.window") {
				e.Window = DefaultWindow
			}
		}
	}
	if s.Repeats == 0 && !s.src.has("repeats") {
		s.Repeats = DefaultRepeats
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// DefaultShape is the cluster shape a scenario gets when it names none.
func DefaultShape() Cluster {
	s := Scenario{}
	s.setDefaults()
	return s.Clusters[0]
}
