package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/chaos"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/mitigation"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

// An existing cluster (a cluster.ExistingProvider: `labrun run --kubeconfig`)
// is what it is: the runner reads its shape once, runs only the cells that
// shape and the user's permissions allow (the others are not run, with the
// reason), builds no image and sets up no addon. docs/existing-cluster.md.

// adoption is what the runner knows of an existing cluster before any cell.
type adoption struct {
	shape                    cluster.Shape
	privileged, raceEmulator bool
}

// adopt reads the shape of the existing cluster o.Provider gives, and points
// the host's probes at it: the host's kernel and Docker are not the cluster's,
// and no image is built. It returns nil for a provider that makes its
// clusters.
func adopt(ctx context.Context, o *RunOptions) (*adoption, error) {
	p, ok := o.Provider.(cluster.ExistingProvider)
	if !ok {
		return nil, nil
	}
	shape, err := p.ReadShape(ctx)
	if err != nil {
		return nil, err
	}
	a := &adoption{shape: shape}
	a.privileged, a.raceEmulator = p.Allowed()
	o.probe = func(context.Context) hostFacts {
		return hostFacts{err: fmt.Errorf("not probed: the cells run on an existing cluster (its nodes' kernels are in %s)", "existing.kernel.*")}
	}
	o.hostEnv = func(ctx context.Context, cells []scenario.Cell) results.Env {
		e := collect.ClientEnv(ctx, cells)
		for k, v := range shape.Facts() {
			e.Extra["existing."+k] = v
		}
		return e
	}
	return a, nil
}

// mark gives each cell the existing cluster cannot run its reason.
func (a *adoption) mark(cells []scenario.Cell) {
	if a == nil {
		return
	}
	for i := range cells {
		if cells[i].Runs() {
			cells[i].NotRun = a.cannotRun(cells[i])
		}
	}
}

// cannotRun says why the existing cluster cannot run a cell ("" if it can).
func (a *adoption) cannotRun(c scenario.Cell) string {
	if r := ShapeMismatch(a.shape, c.Shape.Cluster); r != "" {
		return r
	}
	for _, m := range c.Mitigations.ClusterLevel() {
		if m.ID == "delay-aaaa" {
			continue // labagent's mode: allowed with the race emulator, below
		}
		return fmt.Sprintf("mitigation %s changes the cluster (%s): not run on an existing cluster, which the lab does not change", m.ID, m.Where)
	}
	if chaos.NeedsAgent(c) && !a.raceEmulator {
		what := "the race emulator drops DNS packets on the cluster's nodes"
		if !c.UnderEmulator() {
			what = "delay-aaaa installs labagent's packet rules on the cluster's nodes"
		}
		return what + ": not run without --allow-race-emulator and --allow-privileged"
	}
	if c.Backend == mitigation.GRPCAres || c.Backend == mitigation.GRPCNative {
		return "back end " + c.Backend + " calls the lab gRPC server, which an existing cluster does not have"
	}
	for _, n := range c.Names.Names {
		if n.Kind == "external" || strings.HasSuffix(strings.TrimSuffix(n.Name, ".")+".", addons.Zone) {
			return fmt.Sprintf("name %s is answered by the lab upstream (zone %s), which an existing cluster does not have (its CoreDNS is not rewritten): use names its DNS answers, e.g. kubernetes.default or %s", n.Name, addons.Zone, existing.LabService)
		}
	}
	need := []string{workload.ProbeImage(c.Backend)}
	if chaos.NeedsAgent(c) {
		need = append(need, "labagent")
	}
	for _, img := range need {
		if a.shape.LabImages[img] == "" {
			return fmt.Sprintf("no node holds the lab image labrun/%s and no --image-registry serves it", img)
		}
	}
	return ""
}

// ShapeMismatch says how an existing cluster's shape differs from the one
// a scenario asks for ("" when it matches): kube-proxy's mode, the DNS
// server and its ready endpoints, the pod network, the Ready workers, the
// Kubernetes version and the Ready control planes.
func ShapeMismatch(s cluster.Shape, want scenario.Cluster) string {
	def := scenario.DefaultShape()
	kp := cmpOr(want.KubeProxy, def.KubeProxy)
	switch {
	case s.KubeProxyMode == "":
		return fmt.Sprintf("cluster's kube-proxy mode unknown (%s); the shape asks for %s", s.KubeProxySource, kp)
	case s.KubeProxyMode != kp:
		return fmt.Sprintf("cluster runs kube-proxy %s; the shape asks for %s", s.KubeProxyMode, kp)
	}
	server := cmpOr(want.DNS.Server, def.DNS.Server)
	switch {
	case server == "dnsmasq-coredns":
		return "the shape asks for dnsmasq in front of CoreDNS, which the lab sets up on its own clusters only"
	case s.DNSServer != server:
		return fmt.Sprintf("cluster runs DNS server %s; the shape asks for %s", orUnknown(s.DNSServer), server)
	}
	if r := want.DNS.Replicas; r > 0 && s.DNSEndpoints != r {
		return fmt.Sprintf("cluster has %d ready DNS endpoints behind kube-dns; the shape asks for %d replicas", s.DNSEndpoints, r)
	}
	pn := cmpOr(want.PodNetwork, def.PodNetwork)
	wantNet := pn
	switch {
	case pn == scenario.DefaultPodNetwork && want.NodeImage == "published":
		wantNet, pn = "kindnet", "kindnet (kind's own, as in the published node image)"
	case pn == scenario.DefaultPodNetwork:
		wantNet = "labnet" // the lab's default network, as its DaemonSet names it
	}
	if !slices.Contains(s.PodNetworks, wantNet) {
		return fmt.Sprintf("cluster runs pod network %s; the shape asks for %s", orUnknown(strings.Join(s.PodNetworks, ", ")), pn)
	}
	if want.Nodes.Workers > s.Workers {
		return fmt.Sprintf("cluster has %d Ready workers; the shape asks for %d", s.Workers, want.Nodes.Workers)
	}
	// The version and control planes only when the file names them: left to
	// the defaults, they would turn away most clusters a user brings.
	if v := want.Kubernetes; want.Pinned.Kubernetes && !sameVersion(s.Kubernetes, v) {
		return fmt.Sprintf("cluster runs Kubernetes %s; the shape asks for %s", orUnknown(s.Kubernetes), v)
	}
	if cp := want.Nodes.ControlPlanes; want.Pinned.ControlPlanes && s.ControlPlanes != cp {
		return fmt.Sprintf("cluster has %d Ready control planes; the shape asks for %d", s.ControlPlanes, cp)
	}
	return ""
}

// sameVersion says whether a cluster's version (its GitVersion, which a
// distribution may suffix: v1.36.1+k3s1, v1.36.1-eks-4f1c2a) is the one a
// shape names (v1.36.1; v1.36 takes any patch).
func sameVersion(found, want string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(found, "v"), strings.TrimPrefix(want, "v"))
	return ok && (rest == "" || rest[0] < '0' || rest[0] > '9')
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// upExisting makes the lab's footprint on an existing cluster for a shape:
// no image is built or loaded, CoreDNS and the nodes are left as they are.
func upExisting(ctx context.Context, o UpOptions, p cluster.ExistingProvider) (*Testbed, error) {
	shape := scenario.DefaultShape()
	if o.Scenario != "" {
		var err error
		if shape, err = shapeFrom(o.Scenario, o.Shape); err != nil {
			return nil, err
		}
	}
	spec := specFor(shape)
	spec.Name, spec.Run, spec.Retain = o.Name, o.Run, o.Retain
	c, err := p.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	if c.Adopted == nil {
		return nil, fmt.Errorf("cluster %s: the existing-cluster provider gave a cluster without its capabilities", c.Name)
	}
	return &Testbed{Cluster: c, Shape: shape, Facts: c.Adopted.Shape.Facts()}, nil
}

// addClusterEnv records a testbed's cluster in env.json: the lab's images
// and node image for a cluster it made, the shape it read for an existing
// one (no docker call).
func addClusterEnv(ctx context.Context, env *results.Env, tb *Testbed) error {
	if tb.Cluster.Adopted != nil {
		return collect.AddAdoptedEnv(env, tb.Cluster, tb.Facts)
	}
	return collect.AddClusterEnv(ctx, env, tb.Cluster, tb.Images, addonSteps(tb), tb.Facts, tb.PublishedNode)
}
