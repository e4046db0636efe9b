package chaos

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results/emulator"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

const (
	// AgentName names the race emulator's DaemonSet and its pods' label.
	AgentName = "labrun-agent"
	// AgentMetricsPort is where the agent serves its counters, on the node's
	// own address (hostNetwork), so the runner reaches it from the host
	// through the kind network with no exec.
	AgentMetricsPort = 9465
	// agentRuleMarks are what every rule of the agent carries (its comment)
	// or jumps to (its chain): docs/race-emulator.md.
	agentComment = "labrun-agent"
	agentChain   = "LABRUN-AGENT"
)

// AgentOptions is what the agent DaemonSet needs beyond its cell.
type AgentOptions struct {
	Run       string // the run id, a label value
	Namespace string
	Image     string // the labagent image
	VIP       string // the cluster DNS Service's ClusterIP
	Replicas  int    // CoreDNS replicas behind the VIP (profile 5.0-5.5's p)
	// PullPolicy of the agent's image (default Never: the lab preloads it).
	PullPolicy corev1.PullPolicy
	// Nodes, when set, are the only nodes the agent runs on; empty is every
	// node. NewAgent sets them to its cluster's nodes.
	Nodes []string
}

// NeedsAgent reports whether a cell runs labagent: under the race emulator,
// or with the delay-aaaa mitigation (the agent's delay queue).
func NeedsAgent(cell scenario.Cell) bool {
	return cell.UnderEmulator() || cell.Mitigations.Has("delay-aaaa")
}

// agentMode is labagent's --mode for a cell: emulate under the race
// emulator, delay-aaaa with that mitigation, both joined by +.
func agentMode(cell scenario.Cell) string {
	var parts []string
	if cell.UnderEmulator() {
		parts = append(parts, "emulate")
	}
	if cell.Mitigations.Has("delay-aaaa") {
		parts = append(parts, "delay-aaaa")
	}
	return strings.Join(parts, "+")
}

// AgentDaemonSet is labagent for a cell that needs it (NeedsAgent): one
// privileged host-network agent per node (control plane included, so every
// node a probe may reach the VIP from is covered), emulating the race, and
// holding AAAA queries with delay-aaaa. It fails for a cell that needs no
// agent, and for a drop probability labagent cannot take.
func AgentDaemonSet(cell scenario.Cell, o AgentOptions) (*appsv1.DaemonSet, error) {
	if !NeedsAgent(cell) {
		return nil, fmt.Errorf("agent for cell %s: the cell runs without the race emulator and without delay-aaaa", cell.ID)
	}
	e := cell.Chaos.RaceEmulator
	if e == nil {
		e = &scenario.RaceEmulator{Profile: scenario.DefaultProfile} // delay-aaaa alone: the race flags are unused
	}
	if e.Probability != nil {
		return nil, fmt.Errorf("agent for cell %s: an explicit drop probability (%g) cannot be given to labagent, which derives it from the profile and replicas", cell.ID, *e.Probability)
	}
	if o.Image == "" || o.Namespace == "" || o.VIP == "" || o.Replicas < 1 {
		return nil, fmt.Errorf("agent for cell %s: image, namespace, VIP and replicas are required", cell.ID)
	}
	window := time.Duration(e.Window)
	if window <= 0 {
		window = time.Duration(scenario.DefaultWindow)
	}
	labels := map[string]string{
		workload.LabelApp:  AgentName,
		workload.LabelRun:  o.Run,
		workload.LabelCell: workload.CellHash(cell.ID),
	}
	privileged := true
	grace := int64(10) // the agent removes its rules on SIGTERM
	var affinity *corev1.Affinity
	if len(o.Nodes) > 0 {
		// A field selector takes one value (the API server refuses more):
		// one term per node, and terms are ORed.
		var terms []corev1.NodeSelectorTerm
		for _, n := range o.Nodes {
			terms = append(terms, corev1.NodeSelectorTerm{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{n}}},
			})
		}
		affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentName, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					Affinity:                      affinity,
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name:            "labagent",
						Image:           o.Image,
						ImagePullPolicy: cmp.Or(o.PullPolicy, corev1.PullNever),
						Args: []string{
							"run",
							"--vip=" + o.VIP,
							"--mode=" + agentMode(cell),
							"--profile=" + e.Profile,
							"--window=" + window.String(),
							"--replicas=" + strconv.Itoa(o.Replicas),
							// $(HOST_IP) is expanded by the kubelet from the env below.
							"--metrics-addr=$(HOST_IP):" + strconv.Itoa(AgentMetricsPort),
						},
						Env: []corev1.EnvVar{{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIP"},
						}}},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("50m"),
							corev1.ResourceMemory: resource.MustParse("32Mi"),
						}},
					}},
				},
			},
		},
	}, nil
}

// agentCountersURL is where a node's agent serves its counters.
func agentCountersURL(nodeIP string) string {
	return fmt.Sprintf("http://%s:%d/counters", nodeIP, AgentMetricsPort)
}

// AgentCounters reads one node's agent counters.
func AgentCounters(ctx context.Context, nodeIP string) (emulator.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, agentCountersURL(nodeIP), nil)
	if err != nil {
		return emulator.Snapshot{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return emulator.Snapshot{}, fmt.Errorf("agent counters on %s: %w", nodeIP, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return emulator.Snapshot{}, fmt.Errorf("agent counters on %s: %w", nodeIP, err)
	}
	if resp.StatusCode != http.StatusOK {
		return emulator.Snapshot{}, fmt.Errorf("agent counters on %s: HTTP %d: %s", nodeIP, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var s emulator.Snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return emulator.Snapshot{}, fmt.Errorf("agent counters on %s: %w", nodeIP, err)
	}
	return s, nil
}

// agentOnNode says whether an agent runs on a node (it holds the lock, an
// abstract unix socket of the node's network namespace, until its process
// exits) and counts its iptables rules and chains there, in both iptables
// flavours (the agent picks the one holding rules): one exec.
func agentOnNode(ctx context.Context, c *cluster.Cluster, node string) (running bool, rules int, err error) {
	return lookOnNode(ctx, c, node, emulator.LockName)
}

func lookOnNode(ctx context.Context, c *cluster.Cluster, node, lock string) (running bool, rules int, err error) {
	const script = `grep -q " $1$" /proc/net/unix; rc=$?
if [ $rc -eq 0 ]; then echo "$2"; elif [ $rc -gt 1 ]; then echo "cannot read /proc/net/unix" >&2; exit 2; fi
for t in mangle raw; do iptables-nft-save -t $t 2>/dev/null; iptables-legacy-save -t $t 2>/dev/null; done; true`
	out, err := c.Exec(ctx, node, "sh", "-c", script, "sh", lock, agentRunning)
	if err != nil {
		return false, 0, fmt.Errorf("look for the race emulator on %s: %w", node, err)
	}
	return strings.HasPrefix(string(out), agentRunning+"\n"), countAgentRules(string(out)), nil
}

// agentRunning is what agentOnNode's script prints when the lock is held.
const agentRunning = "labrun: an agent holds the lock"

// countAgentRules counts the lines of iptables-save output that belong to
// the agent: its rules (by comment or jump) and its chain declarations.
func countAgentRules(save string) int {
	n := 0
	for _, line := range strings.Split(save, "\n") {
		if strings.Contains(line, agentComment) || strings.Contains(line, agentChain) {
			n++
		}
	}
	return n
}

// installAgent creates the DaemonSet and waits until every node's agent
// answers and its rules are in place, so no probe starts before the race
// emulator does.
func installAgent(ctx context.Context, cs kubernetes.Interface, c *cluster.Cluster, ds *appsv1.DaemonSet) error {
	if _, err := cs.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create race emulator DaemonSet: %w", err)
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, workload.PollEvery, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		if int(d.Status.NumberReady) != len(c.Nodes) {
			last = fmt.Errorf("%d of %d agents ready", d.Status.NumberReady, len(c.Nodes))
			return false, nil
		}
		last = cluster.EachNode(c.Nodes, func(n cluster.Node) error {
			if _, err := AgentCounters(ctx, n.IP); err != nil {
				return err
			}
			_, rules, err := agentOnNode(ctx, c, n.Name)
			if err == nil && rules == 0 {
				err = fmt.Errorf("node %s: the agent's rules are not installed yet", n.Name)
			}
			return err
		})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("race emulator not running on every node: %w (last: %v)", err, last)
	}
	return nil
}

// deleteAgent deletes the race emulator's DaemonSet and its pods (at once,
// not a garbage collector's pass later); each agent gets SIGTERM, on which
// it removes its rules.
func deleteAgent(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	err := cs.AppsV1().DaemonSets(namespace).Delete(ctx, AgentName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete race emulator DaemonSet: %w", err)
	}
	err = cs.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: workload.LabelApp + "=" + AgentName})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete race emulator pods: %w", err)
	}
	return nil
}

// checkAgentGone waits until no node runs an agent (the processes have
// exited: the next cell's agent can take the lock and the queues) and checks
// that none kept a rule. The pods' objects go with the cell's namespace:
// waiting for the API server to remove them would add the kubelet's status
// round trip, a second or two, to every cell.
func checkAgentGone(ctx context.Context, c *cluster.Cluster) error {
	var mu sync.Mutex
	var running, left []string
	err := wait.PollUntilContextTimeout(ctx, workload.PollEvery, time.Minute, true, func(ctx context.Context) (bool, error) {
		running, left = nil, nil
		err := cluster.EachNode(c.Nodes, func(n cluster.Node) error {
			on, rules, err := agentOnNode(ctx, c, n.Name)
			mu.Lock()
			defer mu.Unlock()
			if on {
				running = append(running, n.Name)
			} else if rules > 0 {
				left = append(left, fmt.Sprintf("%s: %d", n.Name, rules))
			}
			return err
		})
		return err == nil && len(running) == 0, err
	})
	var errs []error
	if len(running) > 0 {
		slices.Sort(running)
		errs = append(errs, fmt.Errorf("race emulator still running on %s", strings.Join(running, ", ")))
	}
	if len(left) > 0 {
		slices.Sort(left)
		errs = append(errs, fmt.Errorf("race emulator rules left after its agent stopped (%s)", strings.Join(left, ", ")))
	}
	return errors.Join(append(errs, err)...)
}
