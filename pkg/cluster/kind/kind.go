// Package kind is the kind back end of cluster.Provider: clusters whose nodes
// are Docker containers, made through sigs.k8s.io/kind's Go API (no kind
// binary).
package kind

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/cluster/egress"
	"labrun.dev/labrun/pkg/images"
)

// Provider makes clusters whose nodes are Docker containers.
type Provider struct {
	provider *kindcluster.Provider
	progress io.Writer
	// warnings is shared by every cluster's client, so that the API
	// server's warnings reach progress once per run, not once per cluster.
	warnings *cluster.Warnings
}

var _ cluster.Provider = (*Provider)(nil)

// New returns the kind provider; progress gets kind's own status lines.
func New(progress io.Writer) *Provider {
	if progress == nil {
		progress = io.Discard
	}
	return &Provider{
		provider: kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(logger{progress})),
		progress: progress,
		warnings: cluster.NewWarnings(progress),
	}
}

// kindConfig turns a Spec into kind's configuration.
// cellWorkerPatch makes kubeadm join a worker with cluster.CellTaint.
const cellWorkerPatch = `kind: JoinConfiguration
nodeRegistration:
  taints:
  - key: ` + cluster.CellTaint + `
    effect: NoSchedule
`

// kubeletPatch: Kubernetes >= 1.35 refuses cgroup v1 hosts unless told
// otherwise, and the lab's hosts are cgroup v1 (FACTS.md). The field is
// ignored where unknown.
const kubeletPatch = `kind: KubeletConfiguration
apiVersion: kubelet.config.k8s.io/v1beta1
failCgroupV1: false
`

// joinKubeletPatch makes a joining kubelet wait for its client certificate
// before it starts (--rotate-certificates=false; kubeadm forces the
// configuration's rotateCertificates to true, a flag wins over it). With
// rotation the kubelet starts at once as system:anonymous and gets its
// certificate "in background": its Services informer, refused meanwhile,
// retries with a growing backoff (1, 2, 4 s), and a pod that reaches the node
// before that informer has listed once fails ("services have not yet been
// read at least once, cannot construct envvars") and is retried 10 s or more
// later. Seen in 4 of 17 bring-ups once nodes stopped unpacking images
// (kube-proxy and labnet on a worker: nodes Ready in 14 to 17 s, not 2 to 3).
// Nothing is lost by waiting: the node cannot register without the
// certificate either. A lab cluster lives hours; the certificate, a year.
// No apiVersion: kind merges kubeletExtraArgs by name into any kubeadm
// version's join configuration (a map before v1beta4, a list from it).
const joinKubeletPatch = `kind: JoinConfiguration
nodeRegistration:
  kubeletExtraArgs:
    rotate-certificates: "false"
`

// clusterPatch (kind uses kubeadm.k8s.io/v1beta4 from Kubernetes v1.36, the
// lab's oldest; an older version would ignore the field and keep RSA):
// kubeadm makes a dozen keys (CAs, the API server's, etcd's,
// the service accounts' signing key, kubeconfigs) before the control plane
// can start; RSA-2048 took 1.3 s of `kubeadm init` on 2 cores, ECDSA P-256
// (kubeadm.k8s.io/v1beta4, every version the lab builds or pulls) a few ms.
const clusterPatch = `kind: ClusterConfiguration
encryptionAlgorithm: ECDSA-P256
`

func kindConfig(s cluster.Spec) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{}
	for i := 0; i < s.ControlPlanes; i++ {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.ControlPlaneRole, Image: s.NodeImage})
	}
	for i := 0; i < s.Workers; i++ {
		n := v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: s.NodeImage}
		if s.CellWorkers {
			// Registered tainted, before anything is scheduled there.
			n.KubeadmConfigPatches = []string{cellWorkerPatch}
		}
		cfg.Nodes = append(cfg.Nodes, n)
	}
	cfg.Networking.KubeProxyMode = v1alpha4.ProxyMode(s.KubeProxyMode)
	cfg.Networking.PodSubnet = s.PodSubnet
	if s.PodNetwork != nil {
		cfg.Networking.DisableDefaultCNI = true
		if sub := s.PodNetwork.PodSubnet(); sub != "" {
			cfg.Networking.PodSubnet = sub
		}
	}
	cfg.KubeadmConfigPatches = []string{kubeletPatch, clusterPatch, joinKubeletPatch}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

// Create makes a cluster and waits until every node and CoreDNS is Ready.
// If ctx is cancelled (Ctrl-C) or anything fails, the half-made cluster is
// deleted before Create returns.
func (k *Provider) Create(ctx context.Context, s cluster.Spec) (c *cluster.Cluster, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	existing, err := k.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range existing {
		if n == s.Name {
			return nil, fmt.Errorf("cluster %q already exists: `labrun cluster down --name %s` deletes it", s.Name, s.Name)
		}
	}
	if err := checkImage(ctx, s.NodeImage); err != nil {
		return nil, err
	}
	// The host lock, from the sysctls' record until kind's node containers
	// exist. A Delete takes it around its "was that the last lab cluster?"
	// check (List, which sees a cluster once its first node container
	// exists) and what it removes when the answer is yes: the sysctls'
	// record, the egress guard, kind's network. Held across our whole
	// window it closes these races with another cluster's last Delete (in
	// this process, or another labrun):
	//   - the Delete lists no cluster (ours has no container yet) and
	//     removes the guard after we ensured it: our nodes would start
	//     unguarded;
	//   - it removes kind's network between our Ensure and kind's
	//     Provision, which then makes a network of its own, unguarded;
	//   - it restores and forgets the sysctls' record we are relying on,
	//     so nothing restores what our kubelets change.
	// Once our containers exist, List counts us and a Delete leaves all of
	// that in place, so the lock is released then rather than after the
	// whole bring-up (minutes), and clusters still come up side by side.
	// A marker file of "creation in progress" would do the same without
	// holding a lock during kind's provisioning, but a kill -9 leaves it
	// behind, and the flock goes with the process.
	unlock, err := cluster.LockHost(ctx, k.progress, "cluster "+s.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := cluster.SaveHostSysctls(); err != nil {
		return nil, err
	}
	// Before the first node starts: its components reach for the service VIP
	// before kube-proxy programs it, and the node's default route leads off
	// the machine.
	guard, err := egress.Host{}.Ensure(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", s.Name, err)
	}
	fmt.Fprintf(k.progress, "cluster %s: egress guard: %s\n", s.Name, guard)
	kubeconfig := cluster.KubeconfigPath(s.Name)
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o700); err != nil {
		return nil, err
	}
	defer func() {
		unlock() // before the Delete below, which takes the lock itself
		if err != nil && s.Retain && ctx.Err() == nil {
			fmt.Fprintf(k.progress, "cluster %s: kept after a failure (--retain): %v\n", s.Name, err)
		} else if err != nil {
			fmt.Fprintf(k.progress, "cluster %s: deleting the half-made cluster (%v)\n", s.Name, err)
			down, cancel := cluster.CleanupContext(ctx)
			defer cancel()
			if derr := k.Delete(down, s.Name); derr != nil {
				fmt.Fprintf(k.progress, "cluster %s: delete: %v\n", s.Name, derr)
			}
		}
	}()

	cfg := kindConfig(s)
	if s.ControlPlanes == 1 {
		join, err := newJoinFiles(s.Name)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", s.Name, err)
		}
		join.configure(cfg)
	}
	done := make(chan error, 1)
	go func() {
		done <- k.provider.Create(s.Name,
			kindcluster.CreateWithV1Alpha4Config(cfg),
			kindcluster.CreateWithKubeconfigPath(kubeconfig),
			kindcluster.CreateWithWaitForReady(0),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false))
	}()
	finished, err := k.awaitNodes(ctx, s.Name, done)
	unlock()
	if !finished {
		select {
		case err = <-done:
		case <-ctx.Done():
			// kind's Create takes no context: remove its nodes under it, which
			// makes it fail fast, then wait for it before the final delete.
			fmt.Fprintf(k.progress, "cluster %s: interrupted, removing its nodes\n", s.Name)
			_ = k.provider.Delete(s.Name, kubeconfig)
			<-done
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", s.Name, kindError(err))
	}
	if c, err = k.Get(ctx, s.Name); err != nil {
		return nil, err
	}
	if s.PodNetwork != nil {
		start := time.Now()
		fmt.Fprintf(k.progress, "cluster %s: installing pod network %s\n", s.Name, s.PodNetwork.Name())
		if err := s.PodNetwork.Install(ctx, c); err != nil {
			return nil, fmt.Errorf("cluster %s: pod network %s: %w", s.Name, s.PodNetwork.Name(), err)
		}
		fmt.Fprintf(k.progress, "cluster %s: pod network %s installed (%s)\n", s.Name, s.PodNetwork.Name(), time.Since(start).Round(100*time.Millisecond))
	}
	if err := cluster.WaitReady(ctx, c, s.DNSReplicas, s.DNSRewired, k.progress); err != nil {
		return nil, err
	}
	if s.PodNetwork == nil {
		// labnet routes the pod CIDRs node to node.
		if err := cluster.WaitPodRoutes(ctx, c, k.progress); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// nodesPoll is how often Create looks for its first node container while
// it holds the host lock.
const nodesPoll = 250 * time.Millisecond

// awaitNodes waits, while kind's Create runs, until the cluster is in List
// (its first node container exists), kind's Create returned (finished, with
// its error), or ctx ended.
func (k *Provider) awaitNodes(ctx context.Context, name string, done <-chan error) (finished bool, err error) {
	tick := time.NewTicker(nodesPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return true, err
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
			if all, err := k.provider.List(); err == nil && slices.Contains(all, name) {
				return false, nil
			}
		}
	}
}

// kindError adds the output of a failed command to kind's error.
func kindError(err error) error {
	if re := kindexec.RunErrorForError(err); re != nil {
		return fmt.Errorf("%w\n%s", err, strings.TrimSpace(string(re.Output)))
	}
	return err
}

// checkImage says what is missing before kind tries: Docker, or the node image.
func checkImage(ctx context.Context, image string) error {
	var docker images.Docker
	if err := docker.Check(ctx); err != nil {
		return err
	}
	if _, ok := docker.Inspect(ctx, image); !ok {
		return fmt.Errorf("node image %s is not in Docker: run `labrun images build` first", image)
	}
	return nil
}

// Get returns a running cluster.
func (k *Provider) Get(ctx context.Context, name string) (*cluster.Cluster, error) {
	kubeconfig := cluster.KubeconfigPath(name)
	raw, err := k.provider.KubeConfig(name, false)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(kubeconfig, []byte(raw), 0o600); err != nil {
		return nil, err
	}
	rc, err := restConfig([]byte(raw), k.warnings)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig: %w", name, err)
	}
	list, err := k.provider.ListNodes(name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list nodes: %w", name, err)
	}
	byName := map[string]nodes.Node{}
	var ns []cluster.Node
	for _, n := range list {
		role, _ := n.Role()
		ip, _, _ := n.IP()
		ns = append(ns, cluster.Node{Name: n.String(), Role: role, IP: ip})
		byName[n.String()] = n
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	c, err := cluster.New(name, kubeconfig, rc, ns, nodeRunner(name, byName))
	if err != nil {
		return nil, err
	}
	c.Egress = "none: no egress guard found"
	if g, ok, err := (egress.Host{}).Status(ctx); err != nil {
		c.Egress = "unknown: " + err.Error()
	} else if ok {
		c.Egress = g.String()
	}
	return c, nil
}

// restConfig is the client configuration of a lab cluster from its
// kubeconfig: the API server's warnings go to warnings, and the client-side
// rate limit is raised from client-go's 5 requests/s (burst 10), which only
// slowed the lab down (an add-on manifest of dozens of objects, API
// discovery) on a cluster it has to itself, and made client-go log each
// wait of over a second through klog on stderr.
func restConfig(kubeconfig []byte, warnings *cluster.Warnings) (*rest.Config, error) {
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.WarningHandlerWithContext = warnings
	rc.QPS, rc.Burst = 50, 100
	return rc, nil
}

// nodeRunner runs commands in the node containers, as `docker exec` would.
func nodeRunner(name string, byName map[string]nodes.Node) cluster.RunnerFunc {
	return func(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
		n, ok := byName[node]
		if !ok {
			return nil, fmt.Errorf("cluster %s has no node %q", name, node)
		}
		var out, errb bytes.Buffer
		cmd := n.CommandContext(ctx, argv[0], argv[1:]...).SetStdout(&out).SetStderr(&errb)
		if stdin != nil {
			cmd.SetStdin(stdin)
		}
		err := cmd.Run()
		if err != nil && daemonGone(fmt.Errorf("%w: %s", err, errb.String())) && stdin == nil {
			// The daemon restarted under the command: once it answers
			// again, the command runs once more (its node may have
			// restarted too: the counters' start time says so).
			if werr := waitDocker(ctx, io.Discard, "node "+node, dockerAnswers, dockerBack, time.Second); werr == nil {
				out.Reset()
				errb.Reset()
				cmd = n.CommandContext(ctx, argv[0], argv[1:]...).SetStdout(&out).SetStderr(&errb)
				err = cmd.Run()
			}
		}
		if err != nil {
			return out.Bytes(), fmt.Errorf("on node %s: %s: %w: %s", node, kindexec.PrettyCommand(argv[0], argv[1:]...), err, strings.TrimSpace(errb.String()))
		}
		return out.Bytes(), nil
	}
}

// Delete removes a cluster and its kubeconfig; when no lab cluster is left it
// also restores the host sysctls kubelet changed and removes the egress guard
// and, when no kind cluster at all is left, kind's Docker network.
func (k *Provider) Delete(ctx context.Context, name string) error {
	start := time.Now()
	// A daemon that is restarting cannot delete anything: wait for it.
	if err := waitDocker(ctx, k.progress, "cluster "+name, dockerAnswers, dockerBack, time.Second); err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	if err := k.provider.Delete(name, cluster.KubeconfigPath(name)); err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	os.Remove(cluster.KubeconfigPath(name))
	os.RemoveAll(joinDir(name))
	// Under the host lock: a cluster being created holds it until its node
	// containers exist (see Create), so List either counts it or it has not
	// yet recorded the sysctls nor ensured the guard, and will after this.
	if unlock, err := cluster.LockHost(ctx, k.progress, "cluster "+name); err != nil {
		fmt.Fprintf(k.progress, "cluster %s: the host's sysctls, egress guard and kind's network are left as they are (%v); `labrun clean` removes them once no lab cluster is left\n", name, err)
	} else {
		k.lastCluster(ctx)
		unlock()
	}
	fmt.Fprintf(k.progress, "cluster %s: deleted in %s\n", name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// lastCluster, under the host lock, restores the host sysctls and removes
// the egress guard when no lab cluster is left, and kind's network when no
// kind cluster at all is left.
func (k *Provider) lastCluster(ctx context.Context) {
	left, err := k.List(ctx)
	if err == nil && len(left) == 0 {
		if err := cluster.RestoreHostSysctls(k.progress); err != nil {
			fmt.Fprintf(k.progress, "restore host sysctls: %v\n", err)
		}
		if r, err := (egress.Host{}).Remove(ctx); err != nil {
			fmt.Fprintf(k.progress, "%v\n", err)
		} else if r.Rules > 0 {
			fmt.Fprintf(k.progress, "egress guard removed (%s): no lab cluster is left\n", r)
		}
		if gone, err := (egress.Host{}).RemoveNetwork(ctx); err != nil {
			fmt.Fprintf(k.progress, "%v\n", err)
		} else if gone {
			fmt.Fprintf(k.progress, "docker network %s removed: no kind cluster is left\n", egress.Network)
		}
	}
}

// List returns the lab's clusters (kind clusters named NamePrefix…).
func (k *Provider) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := k.provider.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	var out []string
	for _, n := range all {
		if strings.HasPrefix(n, cluster.NamePrefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// logger adapts kind's logger to a progress writer: kind's status lines,
// and its details up to the level in $LABRUN_KIND_VERBOSITY (kind's -v: 3
// shows the output of kubeadm init and join, for a bring-up's profile).
type logger struct{ w io.Writer }

var kindVerbosity, _ = strconv.Atoi(os.Getenv("LABRUN_KIND_VERBOSITY"))

func (l logger) Warn(m string)             { fmt.Fprintln(l.w, "kind: warning:", m) }
func (l logger) Warnf(f string, a ...any)  { l.Warn(fmt.Sprintf(f, a...)) }
func (l logger) Error(m string)            { fmt.Fprintln(l.w, "kind: error:", m) }
func (l logger) Errorf(f string, a ...any) { l.Error(fmt.Sprintf(f, a...)) }
func (l logger) V(v kindlog.Level) kindlog.InfoLogger {
	return infoLogger{l.w, int(v) <= kindVerbosity}
}

type infoLogger struct {
	w  io.Writer
	on bool
}

func (i infoLogger) Info(m string) {
	if i.on {
		fmt.Fprintln(i.w, "kind:", strings.TrimSpace(m))
	}
}
func (i infoLogger) Infof(f string, a ...any) { i.Info(fmt.Sprintf(f, a...)) }
func (i infoLogger) Enabled() bool            { return i.on }
