package scenario

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/mitigation"
)

// Limits that keep a scenario runnable on one machine.
const (
	MaxControlPlanes = 3
	MaxWorkers       = 10
	MaxDNSReplicas   = 10
	MaxPodsPerNode   = 50
	MaxConcurrency   = 1000
	MaxRate          = 10000
	MaxDuration      = Duration(time.Hour)
	MaxRepeats       = 20
	// MaxCellsAtOnce bounds cellsAtOnce; a kind cluster's at most 8
	// workers (cluster.Spec) bound it further for a shape.
	MaxCellsAtOnce = 4
	MaxWindow      = Duration(time.Second)
)

var (
	// dnsLabel is what a Kubernetes namespace or kind cluster name accepts.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	// mirror is a registry HOST[:PORT], optionally http:// for plain HTTP.
	mirror = regexp.MustCompile(`^(http://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
	// hostName is a DNS name as the probe accepts it, optionally absolute.
	hostName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$`)
)

type validator struct {
	s     *Scenario
	probs Problems
}

func (v *validator) bad(path, msg, valid string) {
	if v.s.src.undecoded(path) {
		return // its value is a stand-in; the decoder already said why
	}
	v.probs = append(v.probs, Problem{File: v.s.src.file, Line: v.s.src.line(path), Field: path, Msg: msg, Valid: valid})
}

func (v *validator) oneOf(path, got string, valid []string) {
	if !slices.Contains(valid, got) {
		v.bad(path, fmt.Sprintf("unknown value %q", got), oneOf(valid))
	}
}

func (v *validator) between(path string, got, lo, hi int) {
	if got < lo || got > hi {
		v.bad(path, fmt.Sprintf("%d is out of range", got), fmt.Sprintf("%d to %d", lo, hi))
	}
}

// validate checks a defaulted scenario and returns every problem. decoded
// says the whole file decoded; without it the matrix is not what the file
// meant, so the selectors of expect.cells are not held to it.
func (s *Scenario) validate(decoded bool) Problems {
	v := &validator{s: s}
	if s.APIVersion != APIVersion {
		v.bad("apiVersion", fmt.Sprintf("unsupported version %q", s.APIVersion), APIVersion)
	}
	if s.Kind != Kind {
		v.bad("kind", fmt.Sprintf("unsupported kind %q", s.Kind), Kind)
	}
	if !dnsLabel.MatchString(s.Metadata.Name) {
		v.bad("metadata.name", fmt.Sprintf("%q is not a lower-case DNS label of at most 40 characters", s.Metadata.Name), "e.g. baseline, grpc-ares")
	}
	v.clusters()
	v.workload()
	v.chaos()
	v.between("repeats", s.Repeats, 1, MaxRepeats)
	if s.CellsAtOnce != 0 || v.s.src.has("cellsAtOnce") {
		v.between("cellsAtOnce", s.CellsAtOnce, 1, MaxCellsAtOnce)
	}
	if m := s.Images.Mirror; m != "" && !mirror.MatchString(m) {
		v.bad("images.mirror", fmt.Sprintf("%q is not a registry HOST[:PORT]", m), "e.g. registry.example:5000, or http://10.0.0.5:5000 for plain HTTP; no path")
	}
	v.expect()
	if decoded && len(v.probs) == 0 {
		v.expectCells() // the matrix is known only once the rest is valid
	}
	return v.probs
}

func (v *validator) clusters() {
	seen := map[string]bool{}
	for i, c := range v.s.Clusters {
		p := fmt.Sprintf("clusters[%d]", i)
		switch {
		case !dnsLabel.MatchString(c.Name):
			v.bad(p+".name", fmt.Sprintf("%q is not a lower-case DNS label of at most 40 characters", c.Name), "e.g. default, ipvs")
		case seen[c.Name]:
			v.bad(p+".name", fmt.Sprintf("%q names two clusters", c.Name), "a name used once")
		}
		seen[c.Name] = true
		v.oneOf(p+".nodeImage", c.NodeImage, NodeImages)
		if c.NodeImage == "published" {
			// The image decides both: kind's kindest/node of one version,
			// with kind's own pod network (kindnet).
			if c.Kubernetes != PublishedNodeKubernetes {
				v.bad(p+".kubernetes", fmt.Sprintf("%q with nodeImage: published, whose kindest/node runs %s", c.Kubernetes, PublishedNodeKubernetes),
					PublishedNodeKubernetes+" (or leave it out), or nodeImage: built for "+strings.Join(SupportedKubernetes, ", "))
			}
			if c.PodNetwork != DefaultPodNetwork {
				v.bad(p+".podNetwork", fmt.Sprintf("%q with nodeImage: published, which runs kind's own pod network (kindnet)", c.PodNetwork),
					DefaultPodNetwork+" (or leave it out), or nodeImage: built")
			}
		} else {
			v.oneOf(p+".kubernetes", c.Kubernetes, SupportedKubernetes)
		}
		v.between(p+".nodes.controlPlanes", c.Nodes.ControlPlanes, 1, MaxControlPlanes)
		v.between(p+".nodes.workers", c.Nodes.Workers, 0, MaxWorkers)
		v.oneOf(p+".podNetwork", c.PodNetwork, PodNetworks)
		v.oneOf(p+".kubeProxy", c.KubeProxy, KubeProxies)
		v.oneOf(p+".dns.server", c.DNS.Server, DNSServers)
		v.between(p+".dns.replicas", c.DNS.Replicas, 1, MaxDNSReplicas)
	}
}

func (v *validator) workload() {
	w := v.s.Workload
	seen := map[string]bool{}
	for i, r := range w.Resolvers {
		p := fmt.Sprintf("workload.resolvers[%d]", i)
		v.oneOf(p, r, mitigation.Resolvers)
		if seen[r] {
			v.bad(p, fmt.Sprintf("%q is listed twice", r), "each back end once")
		}
		seen[r] = true
	}
	sets := map[string]bool{}
	for i, m := range w.Mitigations {
		p := fmt.Sprintf("workload.mitigations[%d]", i)
		set, err := mitigation.ParseSet(m)
		if err != nil {
			v.bad(p, strings.ReplaceAll(err.Error(), "\n", "; "), oneOf(mitigation.IDs())+" (ndots-N: N from 0 to 15), joined with +")
			continue
		}
		if sets[set.ID()] {
			v.bad(p, fmt.Sprintf("%q is the same set as an earlier entry", m), "each set once")
		}
		sets[set.ID()] = true
	}
	for i, names := range w.Names {
		p := v.s.src.elem("workload.names", i)
		if len(names) == 0 {
			v.bad(p, "empty list of names", "at least one {name, kind}")
		}
		seen := map[string]bool{}
		for j, n := range names {
			q := fmt.Sprintf("%s[%d]", p, j)
			v.name(q, n)
			if seen[n.Name] {
				v.bad(q+".name", fmt.Sprintf("%q is listed twice", n.Name), "each name once per list")
			}
			seen[n.Name] = true
		}
	}
	loads := map[Load]bool{}
	for i, l := range w.Load {
		p := v.s.src.elem("workload.load", i)
		v.between(p+".podsPerNode", l.PodsPerNode, 1, MaxPodsPerNode)
		v.between(p+".concurrency", l.Concurrency, 1, MaxConcurrency)
		// Written as what is valid, so that NaN (strconv reads "NaN") is not.
		if !(l.Rate > 0 && l.Rate <= MaxRate) {
			v.bad(p+".rate", fmt.Sprintf("%s is out of range", l.Rate), fmt.Sprintf("more than 0 and at most %d/s", MaxRate))
		}
		if l.Duration <= 0 || l.Duration > MaxDuration {
			v.bad(p+".duration", fmt.Sprintf("%s is out of range", l.Duration), "more than 0s and at most "+MaxDuration.String())
		}
		if loads[l] {
			v.bad(p, "the same load as an earlier entry", "each load once")
		}
		loads[l] = true
	}
}

func (v *validator) name(p string, n Name) {
	switch {
	case n.Name == "":
		v.bad(p+".name", "missing", "a DNS name such as kubernetes.default")
	case !hostName.MatchString(n.Name) || len(n.Name) > 253:
		v.bad(p+".name", fmt.Sprintf("%q is not a DNS name", n.Name), "labels of letters, digits, - and _, joined by dots")
	case n.Kind == "fqdn" && !strings.HasSuffix(n.Name, "."):
		v.bad(p+".name", fmt.Sprintf("%q is of kind fqdn but lacks the trailing dot", n.Name), n.Name+".")
	case n.Kind != "fqdn" && strings.HasSuffix(n.Name, "."):
		v.bad(p+".kind", fmt.Sprintf("%q ends with a dot, which makes it absolute", n.Name), "fqdn")
	}
	v.oneOf(p+".kind", n.Kind, NameKinds)
}

func (v *validator) chaos() {
	seen := map[string]bool{}
	for i, c := range v.s.Chaos {
		p := v.s.src.elem("chaos", i)
		if id := c.ID(); seen[id] {
			v.bad(p, fmt.Sprintf("the same chaos (%s) as an earlier entry", id), "each chaos once")
		} else {
			seen[id] = true
		}
		e := c.RaceEmulator
		if e == nil {
			continue
		}
		q := p + ".raceEmulator"
		v.oneOf(q+".profile", e.Profile, EmulatorProfiles)
		if e.Window <= 0 || e.Window > MaxWindow {
			v.bad(q+".window", fmt.Sprintf("%s is out of range", e.Window), "more than 0s and at most "+MaxWindow.String())
		}
		if e.Probability != nil && !(*e.Probability >= 0 && *e.Probability <= 1) {
			v.bad(q+".probability", fmt.Sprintf("%g is out of range", *e.Probability), "0 to 1")
		}
	}
}
