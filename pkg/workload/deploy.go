package workload

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/scenario"
)

const (
	// namespaceTimeout bounds the wait for a deleted namespace to be gone.
	namespaceTimeout = 2 * time.Minute
	// PollEvery is how often the runner looks at what it waits for: short,
	// since a cell's setup and teardown are a few such waits in a row.
	PollEvery = 250 * time.Millisecond
)

// CellNamespace is the namespace object of a cell: its name from
// Namespace, labelled with the run and the cell so that what a run
// leaves behind can be found.
func CellNamespace(run, cellID string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: Namespace(cellID),
			Labels: map[string]string{
				LabelRun:  run,
				LabelCell: CellHash(cellID),
			},
			Annotations: map[string]string{AnnotationCell: cellID},
		},
	}
}

// CreateNamespace creates ns; one left by an interrupted earlier run is
// deleted first, so a cell never starts among another run's pods.
func CreateNamespace(ctx context.Context, cs kubernetes.Interface, ns *corev1.Namespace) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if err := DeleteNamespace(ctx, cs, ns.Name); err != nil {
			return err
		}
		_, err = cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return nil
}

// DeleteNamespace deletes a namespace and waits until it is gone.
func DeleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	if err := StartDeleteNamespace(ctx, cs, name); err != nil {
		return err
	}
	return WaitNamespaceGone(ctx, cs, name)
}

// StartDeleteNamespace deletes a namespace without waiting for it to go.
func StartDeleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// WaitNamespaceGone waits until a deleted namespace is gone.
func WaitNamespaceGone(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := wait.PollUntilContextTimeout(ctx, PollEvery, namespaceTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s still there after %s: %w", name, namespaceTimeout, err)
	}
	return nil
}

// WaitNoPods waits until no pod matches selector in namespace.
func WaitNoPods(ctx context.Context, cs kubernetes.Interface, namespace, selector string, timeout time.Duration) error {
	left := 0
	err := wait.PollUntilContextTimeout(ctx, PollEvery, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		left = len(list.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%d pod(s) %s in %s still there after %s: %w", left, selector, namespace, timeout, err)
	}
	return nil
}

// ErrPodGone says a pod was deleted before it could be followed.
var ErrPodGone = errors.New("pod deleted")

// WaitContainerStarted waits until the pod's container runs or has run, so
// its log can be followed. A container that cannot start (an image that is
// not loaded, a bad configuration) fails at once with the kubelet's reason.
func WaitContainerStarted(ctx context.Context, cs kubernetes.Interface, namespace, pod string, timeout time.Duration) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, ErrPodGone
		}
		if err != nil {
			return false, nil
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return true, nil
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.State.Running != nil || st.State.Terminated != nil {
				return true, nil
			}
			if w := st.State.Waiting; w != nil {
				why = w.Reason + " " + w.Message
				switch w.Reason {
				case "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName":
					return false, fmt.Errorf("container cannot start: %s: %s", w.Reason, w.Message)
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s did not start (%s): %w", namespace, pod, why, err)
	}
	return nil
}

// WaitPodFinished waits until the pod succeeded or failed and says how its
// container ended ("" for exit code 0).
func WaitPodFinished(ctx context.Context, cs kubernetes.Interface, namespace, pod string, timeout time.Duration) (string, error) {
	var end string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, ErrPodGone
		}
		if err != nil {
			return false, nil
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return true, nil
		case corev1.PodFailed:
			end = "pod failed"
			for _, st := range p.Status.ContainerStatuses {
				if t := st.State.Terminated; t != nil {
					end = fmt.Sprintf("probe exited with code %d (%s)", t.ExitCode, t.Reason)
				}
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("pod %s/%s did not finish: %w", namespace, pod, err)
	}
	return end, nil
}

// ProbePods are a cell's probe pods: PodsPerNode on each of the nodes given,
// pinned to it (spec.nodeName), numbered across them.
func ProbePods(cell scenario.Cell, nodes []string, run, namespace, image string) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	for w, node := range nodes {
		for i := 0; i < cell.Load.PodsPerNode; i++ {
			p, err := ProbePod(cell, PodOptions{
				Run: run, Namespace: namespace, Index: w*cell.Load.PodsPerNode + i, Node: node, Image: image,
			})
			if err != nil {
				return nil, err
			}
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("cell %s: no probe pod (podsPerNode %d, %d nodes)", cell.ID, cell.Load.PodsPerNode, len(nodes))
	}
	return pods, nil
}

// DeleteCellPods deletes a cell's pods (by its cell-hash label) from a
// namespace the cell shares with others (an existing cluster's labrun-<run>)
// and waits until they are gone.
func DeleteCellPods(ctx context.Context, cs kubernetes.Interface, namespace, cellID string) error {
	sel := LabelCell + "=" + CellHash(cellID)
	if err := DeletePods(ctx, cs, namespace, sel); err != nil {
		return err
	}
	return WaitNoPods(ctx, cs, namespace, sel, namespaceTimeout)
}

// DeletePods deletes the pods of a namespace that match selector, one by
// one (a list, then a delete each: what every API server and fake serves),
// without waiting for them to go.
func DeletePods(ctx context.Context, cs kubernetes.Interface, namespace, selector string) error {
	list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list pods %s in %s: %w", selector, namespace, err)
	}
	var errs []error
	for _, p := range list.Items {
		if err := cs.CoreV1().Pods(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", namespace, p.Name, err))
		}
	}
	return errors.Join(errs...)
}
