package workload

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Leftovers lists the namespaces and pods matching a label selector: the
// final check, on a cluster the lab did not make, that nothing it deployed
// is left (labrun diagnose, labrun run --kubeconfig, labrun clean
// --kubeconfig).
func Leftovers(ctx context.Context, cs kubernetes.Interface, selector string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: selector}
	var left []string
	nss, err := cs.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list namespaces %s: %w", sel.LabelSelector, err)
	}
	for _, n := range nss.Items {
		left = append(left, "namespace "+n.Name)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		// Listing pods cluster-wide may be forbidden to a namespaced role:
		// the namespace check above is then the whole answer.
		return left, nil
	}
	for _, p := range pods.Items {
		left = append(left, "pod "+p.Namespace+"/"+p.Name)
	}
	return left, nil
}

// Restricted is a container security context that PodSecurity's
// "restricted" level admits: the probes need no privilege.
func Restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(int64(65534)),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
