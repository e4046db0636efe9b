// Package cluster is the seam between the lab and where its clusters come
// from: a Provider makes, finds and removes clusters (pkg/cluster/kind is the
// back end today), and a Cluster gives a Kubernetes client, its nodes and a
// way to run a command on a node, which is all later stages need. Tests give
// a Cluster a fake clientset and a scripted Runner.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Provider makes, finds and removes the lab's clusters. Unlike kind's own
// provider, every method takes a context: an interrupt reaches each of them.
type Provider interface {
	// Create makes a cluster of the spec and returns it once its nodes and
	// DNS are Ready; a half-made cluster is removed before an error returns.
	Create(ctx context.Context, s Spec) (*Cluster, error)
	// Get returns a running cluster.
	Get(ctx context.Context, name string) (*Cluster, error)
	// Delete removes a cluster and what the lab changed on the host for it.
	Delete(ctx context.Context, name string) error
	// List names the lab's clusters (NamePrefix…).
	List(ctx context.Context) ([]string, error)
}

// CleanupTimeout bounds a deletion or teardown step that runs after a
// failure or an interrupt.
const CleanupTimeout = 3 * time.Minute

// CleanupContext is the context of a deletion after ctx failed or ended: not
// cancelled with ctx, so that an interrupt (Ctrl-C) still deletes, and
// bounded by CleanupTimeout, so that a hung Docker cannot hang labrun.
func CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
}

// Runner runs argv on a node and returns its stdout; a failure carries the
// command and its output. stdin may be nil.
type Runner interface {
	Run(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error)
}

// RunnerFunc is a Runner made of a function.
type RunnerFunc func(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
	return f(ctx, node, stdin, argv...)
}

// NamePrefix starts the name of every cluster the lab makes: `labrun clean`
// finds them by it (with kind's own container label), with no state file.
const NamePrefix = "labrun"

// MaxWorkers is the most workers a lab cluster has (what 2 CPUs and kind's
// bring-up bear).
const MaxWorkers = 8

// CellTaint is the taint (NoSchedule) of the workers of a Spec with
// CellWorkers: only what is pinned to a node (a cell's probe pods) or
// tolerates every taint (the per-node agents, kube-proxy, the pod network)
// runs there.
const CellTaint = "labrun.dev/cells"

// Spec is the shape of a cluster.
type Spec struct {
	Name          string // must start with NamePrefix
	NodeImage     string // the kind node image (pkg/images)
	ControlPlanes int
	Workers       int
	KubeProxyMode string // iptables | nftables | ipvs
	PodSubnet     string // "" for kind's default
	DNSReplicas   int    // CoreDNS replicas; the DNAT race needs at least 2
	// DNSRewired says that the caller rewrites CoreDNS's configuration at
	// once, which restarts it: Create then scales CoreDNS but does not wait
	// for its first pods, whose readiness probe (kubeadm's, every 10 s)
	// took 5 to 7 s of a 40 s bring-up here for pods about to be replaced.
	DNSRewired bool
	Retain     bool // keep a cluster that failed to come up, for debugging
	// CellWorkers keeps the workers for the cells' pods: they register with
	// the taint CellTaint, which the cluster's own servers (DNS, the lab's)
	// do not tolerate, so those go to the control plane. Cells side by side
	// on disjoint workers then share no node that carries traffic for both.
	CellWorkers bool
	// PodNetwork replaces the node image's default pod network (labnet);
	// nil keeps it.
	PodNetwork PodNetwork
	// Run is the run id: an existing cluster's provider names its one
	// namespace labrun-<run> and labels everything with it.
	Run string
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
	if s.Workers < 0 || s.Workers > MaxWorkers {
		errs = append(errs, fmt.Sprintf("workers: %d; valid: 0 to %d", s.Workers, MaxWorkers))
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
	Kubeconfig string       // path of its kubeconfig file ("" for a fake)
	Rest       *rest.Config // nil for a fake
	// Client is the one clientset every stage uses for this cluster.
	Client kubernetes.Interface
	Nodes  []Node
	// Runner runs commands on the nodes (kind: in the node containers).
	Runner Runner
	// Egress says what keeps the cluster's traffic on this machine ("" if
	// nothing does): env.json records it.
	Egress string
	// Adopted is set on a cluster the lab did not make: what it may do
	// there (nil: everything).
	Adopted *Adopted
}

// New returns a cluster reached through rest, with one clientset built for it.
func New(name, kubeconfig string, rest *rest.Config, nodes []Node, runner Runner) (*Cluster, error) {
	cs, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client: %w", name, err)
	}
	return &Cluster{Name: name, Kubeconfig: kubeconfig, Rest: rest, Client: cs, Nodes: nodes, Runner: runner}, nil
}

// Exec runs argv on a node and returns its stdout; a failure carries the
// command and its output.
func (c *Cluster) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	return c.Runner.Run(ctx, node, nil, argv...)
}

// ExecStdin is Exec with stdin.
func (c *Cluster) ExecStdin(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
	return c.Runner.Run(ctx, node, stdin, argv...)
}

// Workers are the nodes workloads go to: the workers, or every node of a
// cluster that has none.
func (c *Cluster) Workers() []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == "worker" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return c.Nodes
	}
	return out
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
// node) side by side and joins their errors. A panic in fn is an error of
// that node: no caller could recover it from another goroutine.
func EachNode[N any](nodes []N, fn func(N) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("panic on %v: %v", n, r)
				}
			}()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// KubeconfigPath is where the lab keeps a cluster's kubeconfig (never merged
// into the user's ~/.kube/config).
func KubeconfigPath(name string) string {
	return filepath.Join(os.TempDir(), "labrun-clusters", name+".kubeconfig")
}
