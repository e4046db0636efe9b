// Package lab is the runner: the one place that knows every stage. It walks
// scenario → images → cluster → addons → workload → chaos → collect →
// analyze → report for a plan, shows progress, and cleans up on interrupt.
package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/kind"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// UpOptions say which cluster to bring up.
type UpOptions struct {
	Name       string // cluster name (default cluster.NamePrefix)
	Kubernetes string // overrides the shape's version
	Scenario   string // a scenario file whose cluster shape to use ("" for the default shape)
	Shape      string // which of the scenario's shapes ("" for the first)
	Retain     bool   // keep a cluster whose setup failed, for debugging
	// ClusterMitigations are the cluster-level mitigations (sorted catalog
	// ids, scenario.Shape.ClusterMitigations) to set up.
	ClusterMitigations []string
	// CellsAtOnce > 1 makes a cluster for that many cells side by side
	// (lanes.go): that many times the shape's workers, kept for the cells.
	CellsAtOnce int
	// Provider makes the cluster (default: kind). A
	// cluster.ExistingProvider makes none: Up reads it and makes the lab's
	// namespace there (upExisting).
	Provider cluster.Provider
	// Run is the run id (an existing cluster's namespace is named after it).
	Run      string
	Progress io.Writer
}

// Testbed is a cluster ready for the lab's workloads: nodes Ready, CoreDNS
// Ready and forwarding to the lab upstream, the lab gRPC server Ready (the lab
// images are preloaded in its node image, or imported into the published
// one's nodes), the shape's DNS server and
// cluster-level mitigations set up.
type Testbed struct {
	Cluster *cluster.Cluster
	Shape   scenario.Cluster // the shape it was made for
	// Mitigations are the cluster-level mitigations set up in it.
	Mitigations []string
	// Facts are what its addons recorded (which mode or stand-in ran):
	// env.json's extra, as CLUSTER.KEY.
	Facts    map[string]string
	Images   *images.Plan
	Upstream string // the lab upstream's service IP
	// GRPCServer is the lab gRPC server's service IP (gRPC probes reach it
	// by the name addons.GRPCTarget).
	GRPCServer string
	// PublishedNode is the published node image it runs (nil: the lab's own).
	PublishedNode *images.PublishedNode
	// NoCapture says why its cells cannot capture DNS on the nodes (the
	// published node image has no tcpdump); "" when they can.
	NoCapture string
}

// specFor turns a scenario cluster shape into a cluster spec.
func specFor(c scenario.Cluster) cluster.Spec {
	s := cluster.DefaultSpec()
	if c.Nodes.ControlPlanes > 0 {
		s.ControlPlanes = c.Nodes.ControlPlanes
	}
	s.Workers = c.Nodes.Workers
	if c.KubeProxy != "" {
		s.KubeProxyMode = c.KubeProxy
	}
	if c.DNS.Replicas > 0 {
		s.DNSReplicas = c.DNS.Replicas
	}
	return s
}

// shapeFrom reads the cluster shape of a scenario file.
func shapeFrom(file, name string) (scenario.Cluster, error) {
	sc, err := scenario.LoadFile(file)
	if err != nil {
		return scenario.Cluster{}, err
	}
	for _, c := range sc.Clusters {
		if name == "" || c.Name == name {
			return c, nil
		}
	}
	return scenario.Cluster{}, fmt.Errorf("%s: no cluster shape named %q", file, name)
}

// Up builds (or reuses) the images and brings a lab cluster up; on an
// existing cluster it only makes the lab's namespace (upExisting).
func Up(ctx context.Context, o UpOptions) (*Testbed, error) {
	if p, ok := o.Provider.(cluster.ExistingProvider); ok {
		return upExisting(ctx, o, p)
	}
	shape := scenario.DefaultShape()
	if o.Scenario != "" {
		var err error
		if shape, err = shapeFrom(o.Scenario, o.Shape); err != nil {
			return nil, err
		}
	}
	spec := specFor(shape)
	version := o.Kubernetes
	if version == "" {
		version = shape.Kubernetes
	}
	if o.Name != "" {
		spec.Name = o.Name
	}
	workers := fmt.Sprintf("%d workers", spec.Workers)
	if forCells(&spec, o.CellsAtOnce) {
		workers = fmt.Sprintf("%d workers for %d cells at once", spec.Workers, o.CellsAtOnce)
	}
	start := time.Now()
	plan, node, err := nodeImage(ctx, o, shape, version)
	if err != nil {
		return nil, err
	}
	spec.NodeImage, version = plan.LabNode.Image, plan.Kube.Version
	net := shape.PodNetwork
	if node != nil {
		spec.NodeImage, version, net = node.Ref, shape.Kubernetes, "kindnet (the published node's)"
	}
	spec.Retain = o.Retain
	spec.DNSRewired = true // setUp points CoreDNS at the lab upstream, restarting it
	if spec.PodNetwork, err = podNetwork(shape.PodNetwork, plan); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "cluster %s: creating (%d control-plane, %s, pod network %s, kube-proxy %s, DNS %s, Kubernetes %s)\n",
		spec.Name, spec.ControlPlanes, workers, net, spec.KubeProxyMode, shape.DNS.Server, version)
	provider := o.Provider
	if provider == nil {
		provider = kind.New(o.Progress)
	}
	c, err := provider.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	lab, err := testbed(ctx, o, c, plan, spec, shape, node)
	if err != nil {
		if !o.Retain {
			deleteFailed(ctx, provider, spec.Name, o.Progress)
		}
		return nil, err
	}
	fmt.Fprintf(o.Progress, "cluster %s: ready in %s (kubeconfig: %s)\n", spec.Name, time.Since(start).Round(time.Second), c.Kubeconfig)
	return lab, nil
}

// nodeImage builds (or reuses) the images shape needs and says which node
// image its cluster starts from: the lab's (node is nil), or the published
// one (node), loaded into Docker. The published node has Kubernetes and its
// images: only the lab's own are built, and loaded into its nodes once they
// run.
func nodeImage(ctx context.Context, o UpOptions, shape scenario.Cluster, version string) (*images.Plan, *images.PublishedNode, error) {
	published := shape.NodeImage == "published"
	build := images.Options{Kubernetes: version, Progress: o.Progress, Addons: addonImages(shape), LabOnly: published}
	var node images.PublishedNode
	if published {
		if version != shape.Kubernetes {
			return nil, nil, fmt.Errorf("--kubernetes %s: the shape runs the published node image, whose Kubernetes is %s; use nodeImage: built for another version", version, shape.Kubernetes)
		}
		build.Kubernetes = "" // the published node's own; the lab's images do not depend on it
		var err error
		if node, err = images.FindPublishedNode(""); err != nil { // before minutes of building
			return nil, nil, fmt.Errorf("nodeImage published: %w", err)
		}
	}
	plan, err := images.Build(ctx, build)
	if err != nil {
		return nil, nil, fmt.Errorf("images: %w", err)
	}
	if !published {
		return plan, nil, nil
	}
	if err := node.LoadIntoDocker(ctx, o.Progress); err != nil {
		return nil, nil, fmt.Errorf("nodeImage published: %w", err)
	}
	if node.Unpinned != "" {
		fmt.Fprintf(o.Progress, "images: warning: the stored %s is %s (env.json says so)\n", node.Ref, node.Unpinned)
	}
	return plan, &node, nil
}

// testbed readies cluster c for cells: the lab's images in a published
// node's nodes, the lab's servers, the shape's addons and cluster
// mitigations, and the facts the report records of its node image and pod
// network.
func testbed(ctx context.Context, o UpOptions, c *cluster.Cluster, plan *images.Plan, spec cluster.Spec, shape scenario.Cluster, node *images.PublishedNode) (*Testbed, error) {
	if node != nil {
		if err := loadLabImages(ctx, c, plan, o.Progress); err != nil {
			return nil, err
		}
	}
	lab, err := setUp(ctx, c, plan, spec, o.Progress)
	if err != nil {
		return nil, err
	}
	if err := setUpShape(ctx, lab, shape, o.ClusterMitigations, o.Progress); err != nil {
		return nil, err
	}
	if node != nil {
		lab.Facts["podNetwork.mode"] = "kindnet (kind's own, in the published node image)"
		lab.Facts["nodeImage"] = fmt.Sprintf("%s@%s (%s from %s)", node.Ref, node.Record.Digest, node.Record.Source, node.Record.From)
		if node.Unpinned != "" {
			lab.Facts["nodeImage.unpinned"] = node.Unpinned
		}
		lab.PublishedNode = node
		if lab.NoCapture, err = noTcpdump(ctx, c, node.Ref); err != nil {
			return nil, err
		}
	}
	if m, ok := spec.PodNetwork.(interface{ Mode() string }); ok {
		// Which data path ran (Calico VXLAN, Weave sleeve or fastdp): the report says it.
		lab.Facts["podNetwork.mode"] = m.Mode()
		fmt.Fprintf(o.Progress, "cluster %s: pod network %s in %s mode\n", spec.Name, shape.PodNetwork, m.Mode())
	}
	return lab, nil
}

// forCells makes spec a cluster for n cells side by side (n > 1; lanes.go):
// n times its workers, kept for the cells. It says whether it did.
func forCells(spec *cluster.Spec, n int) bool {
	if n <= 1 {
		return false
	}
	spec.Workers *= n
	spec.CellWorkers = true
	return true
}

// deleteFailed deletes a cluster whose setup failed, with a context of its
// own (cluster.CleanupContext): ctx may be what was cancelled.
func deleteFailed(ctx context.Context, provider cluster.Provider, name string, progress io.Writer) {
	fmt.Fprintf(progress, "cluster %s: setup failed, deleting it (--retain keeps it)\n", name)
	down, cancel := cluster.CleanupContext(ctx)
	defer cancel()
	if err := provider.Delete(down, name); err != nil {
		fmt.Fprintln(progress, err)
	}
}

// setUp installs the lab's addons: the lab upstream DNS server (CoreDNS
// forwards to it) and the lab gRPC server; their images are in the nodes
// (preloaded in images.Plan.LabNode, or loadLabImages).
func setUp(ctx context.Context, c *cluster.Cluster, plan *images.Plan, spec cluster.Spec, progress io.Writer) (*Testbed, error) {
	probeRef, err := images.ImageRef(plan.LabImage("probe-glibc"))
	if err != nil {
		return nil, err
	}
	upstreamRef, err := images.ImageRef(plan.LabImage("labdns"))
	if err != nil {
		return nil, err
	}
	addrs, err := addons.LabServers(ctx, addons.Env{Cluster: c}, probeRef, upstreamRef)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "cluster %s: lab gRPC server at %s:%d (%s, and every name of %s)\n", spec.Name, addrs.GRPC, addons.GRPCPort, addons.GRPCTarget, addons.Zone)
	fmt.Fprintf(progress, "cluster %s: CoreDNS forwards to the lab upstream %s (zone %s)\n", spec.Name, addrs.Upstream, addons.Zone)
	return &Testbed{Cluster: c, Images: plan, Upstream: addrs.Upstream, GRPCServer: addrs.GRPC}, nil
}

// setUpShape makes the cluster what the shape asks for beyond kind's
// configuration: its addon images, its DNS server and its cluster-level
// mitigations.
func setUpShape(ctx context.Context, lab *Testbed, shape scenario.Cluster, mitigations []string, progress io.Writer) error {
	lab.Shape, lab.Mitigations = shape, mitigations
	c := lab.Cluster
	for _, name := range addonImages(shape) {
		if name == "kube-router" {
			continue // the pod network loaded it itself, before the nodes could run pods
		}
		s := lab.Images.AddonImage(name)
		if s == nil {
			return fmt.Errorf("image %s is not in the image plan", name)
		}
		if err := c.LoadImage(ctx, images.ImageTar(s)); err != nil {
			return err
		}
	}
	lab.Facts = map[string]string{"podNetwork": shape.PodNetwork, "kubeProxy": shape.KubeProxy, "dns": shape.DNS.Server}
	env := addons.Env{Cluster: c, Images: lab.Images, Progress: progress, Facts: lab.Facts}
	if err := setUpDNS(ctx, env, shape.DNS); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	for _, m := range mitigations {
		start := time.Now()
		if err := setUpMitigation(ctx, env, m); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		env.Note("mitigation."+m, "set up in "+time.Since(start).Round(100*time.Millisecond).String())
		fmt.Fprintf(progress, "cluster %s: mitigation %s set up (%s)\n", c.Name, m, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// loadLabImages imports the lab's own images into every node of a cluster
// whose node image does not carry them (the published one), as the lab's
// node image has them preloaded.
func loadLabImages(ctx context.Context, c *cluster.Cluster, plan *images.Plan, progress io.Writer) error {
	start := time.Now()
	for _, s := range plan.Lab {
		if err := c.LoadImage(ctx, images.ImageTar(s)); err != nil {
			return fmt.Errorf("cluster %s: lab image %s: %w", c.Name, s.Name, err)
		}
	}
	fmt.Fprintf(progress, "cluster %s: the lab's %d images loaded into its %d nodes (%s)\n", c.Name, len(plan.Lab), len(c.Nodes), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// noTcpdump says why the cells of a cluster from node image ref cannot
// capture DNS on its nodes, or "" when tcpdump is there. A node that cannot
// be asked is an error, not a reason to run without captures.
func noTcpdump(ctx context.Context, c *cluster.Cluster, ref string) (string, error) {
	if len(c.Nodes) == 0 {
		return "", nil
	}
	out, err := c.Exec(ctx, c.Nodes[0].Name, "sh", "-c", "command -v tcpdump || echo absent")
	switch {
	case err != nil:
		return "", fmt.Errorf("cluster %s: is tcpdump on node %s: %w", c.Name, c.Nodes[0].Name, err)
	case strings.TrimSpace(string(out)) == "absent":
		return "node image " + ref + " has no tcpdump", nil
	}
	return "", nil
}
