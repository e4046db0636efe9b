// Package existing is the Provider of a cluster the lab did not make
// (`labrun run FILE --kubeconfig K`): it reads the cluster's shape with
// client-go only (pkg/clusterfacts, as `labrun diagnose` does), makes
// nothing but one namespace labrun-<run> (a Service the probes look up, and
// with --allow-privileged a privileged hostNetwork pod per probed node
// through which node commands run by pod exec), and deletes only that. It
// never calls docker or kind: docs/existing-cluster.md.
package existing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/workload"
)

const (
	// LabelManaged marks everything the lab deploys on an existing cluster
	// (with workload.LabelRun, the run id): `labrun clean --kubeconfig`
	// sweeps by it.
	LabelManaged = "labrun.dev/existing"
	// NamespacePrefix starts the one namespace of a run: labrun-<run>.
	NamespacePrefix = "labrun-"
	// LabService is the Service the lab deploys in its namespace: a name
	// the cluster's own DNS answers, looked up by its short name through
	// the pod's search list.
	LabService = "labrun-target"
	// NodePodPrefix names the privileged node pods (labrun-node-<i>).
	NodePodPrefix = "labrun-node-"
	// NodeContainer runs the node commands (probe-glibc: sh, cat, tcpdump);
	// ToolsContainer those that need iptables (labagent's base).
	NodeContainer  = "node"
	ToolsContainer = "tools"
	// NodePodLifetime bounds a node pod's life (activeDeadlineSeconds)
	// whatever happens to labrun: the kubelet ends it.
	NodePodLifetime = 6 * time.Hour
	// NeedsPrivileged is the reason node commands are refused without
	// --allow-privileged; counters say "not read: " and this.
	NeedsPrivileged = "needs --allow-privileged (a privileged hostNetwork pod per node)"
)

// Lab image names (pkg/images' image/<name>): their references are
// labrun/<name>:<content key>.
var labImages = []string{"probe-glibc", "probe-musl", "labagent"}

// Options say which cluster and what the user allows on it.
type Options struct {
	Kubeconfig, Context string
	// AllowPrivileged: a privileged hostNetwork pod per probed node (node
	// counters, DNS captures, the race emulator's rule checks).
	AllowPrivileged bool
	// AllowRaceEmulator: labagent, which drops DNS packets on the nodes
	// (needs AllowPrivileged too).
	AllowRaceEmulator bool
	// ImageRegistry serves the lab images (REGISTRY/labrun/<name>:<tag>)
	// to nodes that do not hold them; ImageTag is their tag (default
	// "latest").
	ImageRegistry, ImageTag string
	Progress                io.Writer
	// StartTimeout bounds the wait for a node pod to run (default 2 min).
	StartTimeout time.Duration
}

// Provider is the one existing cluster.
type Provider struct {
	o    Options
	rest *rest.Config // nil in tests
	cs   kubernetes.Interface
	// exec runs argv in a pod's container (default: pod exec through the
	// API server); tests give a scripted one.
	exec execFunc

	mu      sync.Mutex
	shape   *cluster.Shape
	made    map[string]string // cluster name → run id, while its namespace exists
	current map[string]*cluster.Cluster
}

// New loads the kubeconfig as kubectl does (explicit file, else
// $KUBECONFIG, else ~/.kube/config) and reaches the cluster with it.
func New(o Options) (*Provider, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	p := NewForClient(cs, o)
	p.rest = cfg
	p.exec = spdyExec(cfg, cs)
	return p, nil
}

// NewForClient is a Provider over a clientset (tests: a fake one).
func NewForClient(cs kubernetes.Interface, o Options) *Provider {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	o.ImageTag = cmp.Or(o.ImageTag, "latest")
	o.StartTimeout = cmp.Or(o.StartTimeout, 2*time.Minute)
	return &Provider{o: o, cs: cs, made: map[string]string{}, current: map[string]*cluster.Cluster{},
		exec: func(context.Context, string, string, string, io.Reader, []string) ([]byte, error) {
			return nil, errors.New("no pod exec without a REST config")
		}}
}

// Allowed says what the user allowed.
func (p *Provider) Allowed() (privileged, raceEmulator bool) {
	return p.o.AllowPrivileged, p.o.AllowPrivileged && p.o.AllowRaceEmulator
}

// Client is the provider's clientset.
func (p *Provider) Client() kubernetes.Interface { return p.cs }

// ReadShape reads the cluster's shape once (get and list calls only).
func (p *Provider) ReadShape(ctx context.Context) (cluster.Shape, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shape != nil {
		return *p.shape, nil
	}
	s, err := ReadShape(ctx, p.cs, p.o.ImageRegistry, p.o.ImageTag)
	if err != nil {
		return s, err
	}
	p.shape = &s
	return s, nil
}

// Namespace is the namespace of a run.
func Namespace(run string) string {
	name := NamespacePrefix + strings.ToLower(run)
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	return name
}

func labels(run string) map[string]string {
	return map[string]string{workload.LabelApp: "labrun", workload.LabelRun: run, LabelManaged: "true"}
}

// Create makes the lab's footprint on the cluster for spec's cells: the
// namespace labrun-<run>, the lab Service, and with AllowPrivileged a node
// pod per probed node. It reads the cluster; it creates no cluster. A
// half-made footprint is deleted before an error returns.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (c *cluster.Cluster, err error) {
	if spec.Run == "" {
		return nil, errors.New("existing cluster: no run id to name the lab's namespace after")
	}
	shape, err := p.ReadShape(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := p.probeNodes(ctx, spec.Workers)
	if err != nil {
		return nil, err
	}
	imgs := shape.LabImages
	ns := Namespace(spec.Run)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels(spec.Run)}}
	if p.o.AllowPrivileged {
		// The node pods (and labagent) are privileged: the namespace says so
		// to PodSecurity admission; nothing outside it changes.
		nsObj.Labels[podSecurityEnforce] = "privileged"
	}
	reused, err := p.ensureNamespace(ctx, nsObj, spec.Run)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.made[spec.Name] = spec.Run
	p.mu.Unlock()
	how := "created"
	if reused {
		how = "reused (left by an earlier attempt of this run: --retain or --resume)"
	}
	fmt.Fprintf(p.o.Progress, "cluster %s: existing cluster; namespace %s %s (everything the lab deploys is in it)\n", spec.Name, ns, how)
	defer func() {
		if err != nil {
			if derr := p.Delete(context.WithoutCancel(ctx), spec.Name); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if _, err := p.cs.CoreV1().Services(ns).Create(ctx, labService(ns, spec.Run), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("existing cluster: create service %s/%s: %w", ns, LabService, err)
	}
	runner, noAccess := cluster.DeniedRunner(NeedsPrivileged), "not read: "+NeedsPrivileged
	if p.o.AllowPrivileged {
		if imgs["probe-glibc"] == "" {
			return nil, fmt.Errorf("existing cluster: the node pods need the lab image labrun/probe-glibc: no node holds it; pass --image-registry")
		}
		pods, err := p.startNodePods(ctx, ns, spec.Run, nodes.list, imgs)
		if err != nil {
			return nil, err
		}
		runner, noAccess = podRunner{ns: ns, pods: pods, tools: imgs["labagent"] != "", exec: p.exec}, ""
	}
	c = &cluster.Cluster{
		Name: spec.Name, Kubeconfig: p.o.Kubeconfig, Rest: p.rest, Client: p.cs, Nodes: nodes.list, Runner: runner,
		Adopted: &cluster.Adopted{
			Namespace: ns, Run: spec.Run, Images: imgs, PullPolicy: corev1.PullIfNotPresent, Shape: shape,
			RaceEmulator: p.o.AllowPrivileged && p.o.AllowRaceEmulator, LabService: LabService, NoNodeAccess: noAccess,
		},
	}
	p.mu.Lock()
	p.current[spec.Name] = c
	p.mu.Unlock()
	return c, nil
}

// podSecurityEnforce is the PodSecurity admission label of a namespace.
const podSecurityEnforce = "pod-security.kubernetes.io/enforce"

// ensureNamespace creates the run's namespace, or reuses the one an earlier
// attempt of the same run left (--retain keeps it, --resume runs under the
// same run id): only when it carries the lab's labels of this run, since
// anything else is not the lab's to use or delete. Reused, it loses the run's
// pods left in it (the node pods are made again under the same names) and
// gets the PodSecurity level this attempt needs.
func (p *Provider) ensureNamespace(ctx context.Context, want *corev1.Namespace, run string) (reused bool, err error) {
	nss := p.cs.CoreV1().Namespaces()
	_, err = nss.Create(ctx, want, metav1.CreateOptions{})
	switch {
	case err == nil:
		return false, nil
	case !apierrors.IsAlreadyExists(err):
		return false, fmt.Errorf("existing cluster: create namespace %s: %w", want.Name, err)
	}
	got, err := nss.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("existing cluster: namespace %s exists: %w", want.Name, err)
	}
	if got.Labels[LabelManaged] != "true" || got.Labels[workload.LabelRun] != run {
		return false, fmt.Errorf("existing cluster: namespace %s exists but is not the lab's namespace of run %s (it lacks the labels %s=true, %s=%s): refusing to use it; the lab reuses only the namespace an earlier attempt of the same run left (--retain, --resume)",
			want.Name, run, LabelManaged, workload.LabelRun, run)
	}
	sel := workload.LabelRun + "=" + run
	if err := workload.DeletePods(ctx, p.cs, got.Name, sel); err != nil {
		return true, fmt.Errorf("existing cluster: reuse namespace %s: %w", got.Name, err)
	}
	if err := workload.WaitNoPods(ctx, p.cs, got.Name, sel, p.o.StartTimeout); err != nil {
		return true, fmt.Errorf("existing cluster: reuse namespace %s: %w", got.Name, err)
	}
	if level, ok := want.Labels[podSecurityEnforce]; got.Labels[podSecurityEnforce] != level {
		if ok {
			got.Labels[podSecurityEnforce] = level
		} else {
			delete(got.Labels, podSecurityEnforce)
		}
		if _, err := nss.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			return true, fmt.Errorf("existing cluster: reuse namespace %s: set its PodSecurity level: %w", got.Name, err)
		}
	}
	return true, nil
}

// Get returns the cluster Create made (while its namespace exists).
func (p *Provider) Get(_ context.Context, name string) (*cluster.Cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.current[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("existing cluster: nothing made for %s", name)
}

// List names what this provider made and has not deleted: an earlier run's
// namespace has another run id, and `labrun clean --kubeconfig` sweeps it.
func (p *Provider) List(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for n := range p.made {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Delete deletes the lab's namespace (its pods and Service with it), waits
// until it is gone and checks by label that nothing of the run is left; the
// check's sentence goes to Progress. It deletes nothing else.
func (p *Provider) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	run, ok := p.made[name]
	p.mu.Unlock()
	if !ok {
		return nil
	}
	ns := Namespace(run)
	// The pods first, by label (the namespace's deletion would take them
	// too): the final check looks for pods anywhere.
	podErr := workload.DeletePods(ctx, p.cs, ns, workload.LabelRun+"="+run)
	delErr := errors.Join(podErr, workload.DeleteNamespace(ctx, p.cs, ns))
	line, err := finalCheck(ctx, p.cs, workload.LabelRun+"="+run, "namespace "+ns+" deleted")
	fmt.Fprintf(p.o.Progress, "cluster %s: %s\n", name, line)
	if err == nil {
		p.mu.Lock()
		delete(p.made, name)
		delete(p.current, name)
		p.mu.Unlock()
		return nil
	}
	return errors.Join(err, delErr)
}

// Sweep deletes every namespace the lab made on the cluster (any run), found
// by label with no state file, then checks that nothing is left: `labrun
// clean --kubeconfig`.
func Sweep(ctx context.Context, cs kubernetes.Interface, progress io.Writer) error {
	sel := LabelManaged + "=true"
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("clean: list namespaces %s: %w", sel, err)
	}
	var errs []error
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
		if err := workload.StartDeleteNamespace(ctx, cs, n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range names {
		if err := workload.WaitNamespaceGone(ctx, cs, n); err != nil {
			errs = append(errs, err)
		}
	}
	what := fmt.Sprintf("%d lab namespace(s) deleted", len(names))
	if len(names) > 0 {
		what += " (" + strings.Join(names, ", ") + ")"
	}
	line, err := finalCheck(ctx, cs, sel, what)
	fmt.Fprintf(progress, "clean: %s\n", line)
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// finalCheck lists what carries selector and says so in one sentence; an
// error when something is left or the check could not be made.
func finalCheck(ctx context.Context, cs kubernetes.Interface, selector, done string) (string, error) {
	left, err := workload.Leftovers(ctx, cs, selector)
	switch {
	case err != nil:
		return fmt.Sprintf("cleanup: could not check what is left (%v)", err), err
	case len(left) > 0:
		err := fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		return "cleanup: LEFT BEHIND: " + strings.Join(left, ", "), err
	}
	return fmt.Sprintf("cleanup: nothing left (%s; no namespace or pod labelled %s remains)", done, selector), nil
}

// labService is the Service the probes look up by short name: no selector
// and no endpoints are needed for the cluster DNS to answer its ClusterIP.
func labService(ns, run string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: LabService, Namespace: ns, Labels: labels(run)},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
		},
	}
}

// probed are the nodes the lab uses.
type probed struct {
	list []cluster.Node
}

// probeNodes picks the nodes probes go to: Ready workers by name, as many as
// the shape asks for (every ready node when it asks for none and the
// cluster has only control planes). Only these get node pods and the race
// emulator: the DNAT and its conntrack race happen on the client's node.
func (p *Provider) probeNodes(ctx context.Context, workers int) (probed, error) {
	list, err := p.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return probed{}, fmt.Errorf("existing cluster: list nodes: %w", err)
	}
	var out probed
	var ready, planes []cluster.Node
	items := list.Items
	slices.SortFunc(items, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range items {
		if !nodeReady(n) {
			continue
		}
		node := cluster.Node{Name: n.Name, Role: "worker", IP: internalIP(n)}
		if isControlPlane(n) {
			node.Role = "control-plane"
			planes = append(planes, node)
			continue
		}
		ready = append(ready, node)
	}
	switch {
	case len(ready) == 0 && len(planes) > 0:
		out.list = planes[:1] // a one-node cluster: its control plane runs the pods
	case workers <= 0 || len(ready) < workers:
		out.list = ready
	default:
		out.list = ready[:workers]
	}
	if len(out.list) == 0 {
		return out, errors.New("existing cluster: no Ready node to probe")
	}
	return out, nil
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func isControlPlane(n corev1.Node) bool {
	_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
	return cp
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// resolveImages finds each lab image among those the nodes hold
// (labrun/<name>:<key>, as on a lab kind cluster where they are preloaded,
// or REGISTRY/labrun/<name>:<tag>); else, with a registry, names it there.
func resolveImages(held []string, registry, tag string) map[string]string {
	out := map[string]string{}
	for _, name := range labImages {
		repo := "labrun/" + name
		for _, h := range held {
			if strings.HasPrefix(h, repo+":") || (registry != "" && strings.HasPrefix(h, strings.TrimSuffix(registry, "/")+"/"+repo+":")) ||
				strings.HasPrefix(h, "docker.io/"+repo+":") {
				out[name] = strings.TrimPrefix(h, "docker.io/")
				break
			}
		}
		if out[name] == "" && registry != "" {
			out[name] = strings.TrimSuffix(registry, "/") + "/" + repo + ":" + tag
		}
	}
	return out
}
