// Package cluster makes and removes the lab's Kubernetes clusters. Its one
// provider today is kind, driven through sigs.k8s.io/kind's Go API (no kind
// binary); a Cluster gives a client configuration, its nodes and a way to run
// a command on a node, which is all later stages need.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
)

// NamePrefix starts the name of every cluster the lab makes: `labrun clean`
// finds them by it (with kind's own container label), with no state file.
const NamePrefix = "labrun"

// Spec is the shape of a cluster.
type Spec struct {
	Name          string // must start with NamePrefix
	NodeImage     string // the kind node image (pkg/images)
	ControlPlanes int
	Workers       int
	KubeProxyMode string // iptables | nftables | ipvs
	PodSubnet     string // "" for kind's default
	DNSReplicas   int    // CoreDNS replicas; the DNAT race needs at least 2
	Retain        bool   // keep a cluster that failed to come up, for debugging
	// PodNetwork replaces the node image's default pod network (labnet);
	// nil keeps it.
	PodNetwork PodNetwork
}

// PodNetwork is a pod network installed in place of the node image's default
// one: kind starts the nodes without a CNI (disableDefaultCNI), Install sets
// one up, and only then can nodes become Ready.
type PodNetwork interface {
	Name() string
	// PodSubnet is the pod CIDR the network expects ("" for kind's default).
	PodSubnet() string
	// Install sets the network up on a cluster whose API server answers.
	Install(ctx context.Context, c *Cluster) error
}

// DefaultSpec is 1 control-plane and 2 workers, kube-proxy in iptables mode,
// CoreDNS with 2 replicas.
func DefaultSpec() Spec {
	return Spec{Name: NamePrefix, ControlPlanes: 1, Workers: 2, KubeProxyMode: "iptables", DNSReplicas: 2}
}

// Validate reports what is wrong with a spec, all at once.
func (s Spec) Validate() error {
	var errs []string
	if !strings.HasPrefix(s.Name, NamePrefix) {
		errs = append(errs, fmt.Sprintf("name %q: must start with %q (that is how `labrun clean` finds it)", s.Name, NamePrefix))
	}
	if s.NodeImage == "" {
		errs = append(errs, "nodeImage: empty; valid: an image from `labrun images build`")
	}
	if s.ControlPlanes != 1 {
		errs = append(errs, fmt.Sprintf("controlPlanes: %d; valid: 1", s.ControlPlanes))
	}
	if s.Workers < 0 || s.Workers > 8 {
		errs = append(errs, fmt.Sprintf("workers: %d; valid: 0 to 8", s.Workers))
	}
	switch s.KubeProxyMode {
	case "iptables", "nftables", "ipvs":
	default:
		errs = append(errs, fmt.Sprintf("kubeProxy: %q; valid: iptables, nftables, ipvs", s.KubeProxyMode))
	}
	if s.DNSReplicas < 1 {
		errs = append(errs, fmt.Sprintf("dns replicas: %d; valid: 1 or more (the race needs 2)", s.DNSReplicas))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster %s: %s", s.Name, strings.Join(errs, "; "))
	}
	return nil
}

// Node is one node of a cluster.
type Node struct {
	Name string // also the node container's name
	Role string // control-plane | worker
	IP   string
}

// Cluster is a running cluster.
type Cluster struct {
	Name       string
	Kubeconfig string // path of its kubeconfig file
	Rest       *rest.Config
	Nodes      []Node
	exec       func(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error)
}

// Exec runs argv on a node and returns its stdout; a failure carries the
// command and its output.
func (c *Cluster) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	return c.exec(ctx, node, nil, argv...)
}

// ExecStdin is Exec with stdin.
func (c *Cluster) ExecStdin(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
	return c.exec(ctx, node, stdin, argv...)
}

// LoadImage imports a docker-loadable image tarball into every node's
// containerd (what `kind load image-archive` does), so pods never pull. Nodes
// import side by side.
func (c *Cluster) LoadImage(ctx context.Context, tarball string) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range c.Nodes {
		g.Go(func() error {
			f, err := os.Open(tarball)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := c.ExecStdin(ctx, n.Name, f, "ctr", "--namespace=k8s.io", "images", "import",
				"--all-platforms", "--digests", "--snapshotter=overlayfs", "-"); err != nil {
				return fmt.Errorf("load %s into %s: %w", tarball, n.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// EachNode runs fn on every node (a Node, or anything a caller keeps per
// node) side by side and joins their errors.
func EachNode[N any](nodes []N, fn func(N) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
