package cluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// readyTimeout bounds the wait for nodes and CoreDNS after kind returns.
const readyTimeout = 3 * time.Minute

// WaitReady waits until every node is Ready and CoreDNS has `replicas` ready
// pods (scaling it first if kubeadm's default differs); when the caller
// rewires CoreDNS at once (rewired, Spec.DNSRewired), it only scales it.
func WaitReady(ctx context.Context, c *Cluster, replicas int, rewired bool, progress io.Writer) error {
	cs := c.Client
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, time.Second, readyTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil // the API server may still be settling
		}
		ready := 0
		for _, n := range list.Items {
			if nodeReady(n) {
				ready++
			}
		}
		return ready == len(c.Nodes) && len(list.Items) == len(c.Nodes), nil
	}); err != nil {
		return fmt.Errorf("cluster %s: nodes not Ready after %s: %w", c.Name, readyTimeout, err)
	}
	fmt.Fprintf(progress, "cluster %s: %d nodes Ready (%s)\n", c.Name, len(c.Nodes), time.Since(start).Round(time.Second))

	deploy := cs.AppsV1().Deployments("kube-system")
	d, err := deploy.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("cluster %s: coredns deployment: %w", c.Name, err)
	}
	if d.Spec.Replicas == nil || int(*d.Spec.Replicas) != replicas {
		r := int32(replicas)
		d.Spec.Replicas = &r
		if _, err := deploy.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("cluster %s: scale coredns to %d: %w", c.Name, replicas, err)
		}
	}
	if rewired {
		return nil // the caller's restart waits for CoreDNS (Spec.DNSRewired)
	}
	if err := WaitCoreDNS(ctx, cs, readyTimeout); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	fmt.Fprintf(progress, "cluster %s: CoreDNS Ready with %d replicas (%s)\n", c.Name, replicas, time.Since(start).Round(time.Second))
	return nil
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitCoreDNS waits until CoreDNS's pods are all updated and ready and the
// DNS Service (kube-dns) has as many ready endpoints: the Deployment's status
// and the Service's EndpointSlices are written by different controllers, and a
// pod counted ready may not be behind the DNS address yet (seen once: a
// cluster "ready" with 1 of 2 CoreDNS endpoints ready).
func WaitCoreDNS(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	start := time.Now()
	if err := WaitDeployment(ctx, cs, "kube-system", "coredns", timeout); err != nil {
		return err
	}
	d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("coredns deployment: %w", err)
	}
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	return waitServiceEndpoints(ctx, cs, "kube-system", "kube-dns", want, timeout-time.Since(start))
}

// waitServiceEndpoints waits until the Service's EndpointSlices list want
// ready endpoints (distinct addresses), for at least a second.
func waitServiceEndpoints(ctx context.Context, cs kubernetes.Interface, ns, service string, want int, timeout time.Duration) error {
	timeout = max(timeout, time.Second)
	ready := 0
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return false, nil
		}
		addrs := map[string]bool{}
		for _, sl := range list.Items {
			for _, e := range sl.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && len(e.Addresses) > 0 {
					addrs[e.Addresses[0]] = true
				}
			}
		}
		ready = len(addrs)
		return ready >= want, nil
	})
	if err != nil {
		return fmt.Errorf("service %s/%s: %d of %d endpoints ready after %s: %w", ns, service, ready, want, timeout, err)
	}
	return nil
}

// WaitDeployment waits until a deployment's pods are all updated and ready.
func WaitDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string, timeout time.Duration) error {
	var last *appsv1.Deployment
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = d
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want, nil
	})
	if err != nil {
		if last != nil {
			s := last.Status
			return fmt.Errorf("deployment %s/%s not ready after %s (ready %d/%d, updated %d): %w", ns, name, timeout, s.ReadyReplicas, s.Replicas, s.UpdatedReplicas, err)
		}
		return fmt.Errorf("deployment %s/%s not found after %s: %w", ns, name, timeout, err)
	}
	return nil
}

// WaitDaemonSet waits until a DaemonSet runs an up-to-date, ready pod on
// each of nodes nodes (0: on every node it is scheduled to, at least one).
// On a timeout the error says what each unready pod is waiting for.
func WaitDaemonSet(ctx context.Context, cs kubernetes.Interface, ns, name string, nodes int, timeout time.Duration) error {
	var last *appsv1.DaemonSet
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = d
		return daemonSetReady(d, nodes), nil
	})
	if err != nil {
		if last == nil {
			return fmt.Errorf("daemon set %s/%s not found after %s: %w", ns, name, timeout, err)
		}
		s := last.Status
		return fmt.Errorf("daemon set %s/%s not ready on %d nodes after %s (scheduled %d, ready %d, updated %d): %w%s",
			ns, name, nodes, timeout, s.DesiredNumberScheduled, s.NumberReady, s.UpdatedNumberScheduled, err, PodProblems(ctx, cs, ns, last.Spec.Selector))
	}
	return nil
}

func daemonSetReady(d *appsv1.DaemonSet, nodes int) bool {
	s := d.Status
	n := int32(nodes)
	if nodes == 0 {
		n = max(s.DesiredNumberScheduled, 1)
	}
	return s.ObservedGeneration >= d.Generation && s.DesiredNumberScheduled == n &&
		s.UpdatedNumberScheduled == n && s.NumberReady == n && s.NumberAvailable == n
}

// PodProblems describes the pods of a selector whose containers are not
// ready or have restarted, for an error.
func PodProblems(ctx context.Context, cs kubernetes.Interface, ns string, sel *metav1.LabelSelector) string {
	pods, err := cs.CoreV1().Pods(ns).List(context.WithoutCancel(ctx), metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(sel)})
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, st := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if t := st.State.Terminated; t != nil && t.ExitCode == 0 {
				continue // an init container that did its work
			}
			var state string
			switch {
			case st.State.Waiting != nil:
				state = st.State.Waiting.Reason + ": " + st.State.Waiting.Message
			case st.State.Terminated != nil:
				t := st.State.Terminated
				state = fmt.Sprintf("terminated %s (exit %d): %s", t.Reason, t.ExitCode, t.Message)
			case !st.Ready:
				state = "running, not ready"
			}
			if t := st.LastTerminationState.Terminated; st.RestartCount > 0 && t != nil {
				state = strings.TrimPrefix(state+fmt.Sprintf("; restarted %d times, last %s (exit %d)", st.RestartCount, t.Reason, t.ExitCode), "; ")
			}
			if state != "" {
				fmt.Fprintf(&b, "\n  pod %s on %s, container %s: %s", p.Name, p.Spec.NodeName, st.Name, state)
			}
		}
	}
	return b.String()
}

// WaitPodRoutes waits until every node routes every other node's pod CIDR
// through that node's address, as the lab's default pod network (labnet)
// does. A node Ready has its own pod network, not yet the routes of the
// others to it: until they have them, replies to its pods leave by the
// default route and are lost (a lookup then waits out its 5 s timeout).
func WaitPodRoutes(ctx context.Context, c *Cluster, progress io.Writer) error {
	start := time.Now()
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		var mu sync.Mutex
		missing = nil
		err = EachNode(c.Nodes, func(n Node) error {
			out, err := c.Exec(ctx, n.Name, "ip", "-4", "route", "show")
			m := []string{fmt.Sprintf("%s: %v", n.Name, err)}
			if err == nil {
				m = missingRoutes(string(out), n.Name, list.Items)
			}
			mu.Lock()
			missing = append(missing, m...)
			mu.Unlock()
			return nil
		})
		return err == nil && len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: pod network routes missing after %s: %s: %w", c.Name, readyTimeout, strings.Join(missing, "; "), err)
	}
	fmt.Fprintf(progress, "cluster %s: every node routes every pod CIDR (%s)\n", c.Name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// missingRoutes are the routes `ip -4 route show` on node self lacks: each
// other node's pod CIDR via its internal IPv4 address.
func missingRoutes(routes, self string, nodes []corev1.Node) []string {
	have := map[string]bool{}
	for _, line := range strings.Split(routes, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" {
			have[f[0]+" via "+f[2]] = true
		}
	}
	var out []string
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !strings.Contains(a.Address, ":") {
				ip = a.Address
			}
		}
		want := n.Spec.PodCIDR + " via " + ip
		if n.Spec.PodCIDR == "" || ip == "" || !have[want] {
			out = append(out, fmt.Sprintf("%s has no route %s (to %s)", self, want, n.Name))
		}
	}
	return out
}
