package lab

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

	"labrun.dev/labrun/pkg/workload"
)

const (
	// namespaceTimeout bounds the wait for a deleted namespace to be gone.
	namespaceTimeout = 2 * time.Minute
	// pollEvery is how often the runner looks at what it waits for: short,
	// since a cell's setup and teardown are a few such waits in a row.
	pollEvery = 250 * time.Millisecond
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// CellNamespace is the namespace object of a cell: its name from
// workload.Namespace, labelled with the run and the cell so that what a run
// leaves behind can be found.
func CellNamespace(run, cellID string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: workload.Namespace(cellID),
			Labels: map[string]string{
				workload.LabelRun:  run,
				workload.LabelCell: workload.CellHash(cellID),
			},
			Annotations: map[string]string{workload.AnnotationCell: cellID},
		},
	}
}

// createNamespace creates ns; one left by an interrupted earlier run is
// deleted first, so a cell never starts among another run's pods.
func createNamespace(ctx context.Context, cs kubernetes.Interface, ns *corev1.Namespace) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if err := deleteNamespace(ctx, cs, ns.Name); err != nil {
			return err
		}
		_, err = cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return nil
}

// deleteNamespace deletes a namespace and waits until it is gone.
func deleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	if err := startDeleteNamespace(ctx, cs, name); err != nil {
		return err
	}
	return waitNamespaceGone(ctx, cs, name)
}

func startDeleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

func waitNamespaceGone(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := wait.PollUntilContextTimeout(ctx, pollEvery, namespaceTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if isNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s still there after %s: %w", name, namespaceTimeout, err)
	}
	return nil
}

// waitNoPods waits until no pod matches selector in namespace.
func waitNoPods(ctx context.Context, cs kubernetes.Interface, namespace, selector string, timeout time.Duration) error {
	left := 0
	err := wait.PollUntilContextTimeout(ctx, pollEvery, timeout, true, func(ctx context.Context) (bool, error) {
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

// errPodGone says a pod was deleted before it could be followed.
var errPodGone = errors.New("pod deleted")

// waitContainerStarted waits until the pod's container runs or has run, so
// its log can be followed. A container that cannot start (an image that is
// not loaded, a bad configuration) fails at once with the kubelet's reason.
func waitContainerStarted(ctx context.Context, cs kubernetes.Interface, namespace, pod string, timeout time.Duration) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if isNotFound(err) {
			return false, errPodGone
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

// waitPodFinished waits until the pod succeeded or failed and says how its
// container ended ("" for exit code 0).
func waitPodFinished(ctx context.Context, cs kubernetes.Interface, namespace, pod string, timeout time.Duration) (string, error) {
	var end string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if isNotFound(err) {
			return false, errPodGone
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
