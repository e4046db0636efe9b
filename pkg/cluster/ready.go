package cluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// readyTimeout bounds the wait for nodes and CoreDNS after kind returns.
const readyTimeout = 3 * time.Minute

// WaitReady waits until every node is Ready and CoreDNS has `replicas` ready
// pods (scaling it first if kubeadm's default differs).
func WaitReady(ctx context.Context, c *Cluster, replicas int, progress io.Writer) error {
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
	if err := WaitDeployment(ctx, cs, "kube-system", "coredns", readyTimeout); err != nil {
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
