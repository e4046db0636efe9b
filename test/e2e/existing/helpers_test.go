//go:build e2e

package existing

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labrun.dev/labrun/pkg/cluster/existing"
	"labrun.dev/labrun/pkg/workload"
)

// existingNamespace is a namespace as a killed `labrun run --kubeconfig`
// leaves it.
func existingNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		workload.LabelRun: "killed-run", existing.LabelManaged: "true",
	}}}
}
