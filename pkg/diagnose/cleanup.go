package diagnose

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/workload"
)

// Cleanup deletes the diagnosis's namespace (and so its pods), waits until
// it is gone, then checks by label that nothing of this diagnosis is left
// anywhere: its sentence is printed at the end of every measurement.
func Cleanup(ctx context.Context, cs kubernetes.Interface, id string) string {
	ns := NamespacePrefix + id
	delErr := workload.DeleteNamespace(ctx, cs, ns)
	left, err := Leftovers(ctx, cs, id)
	switch {
	case err != nil:
		return fmt.Sprintf("cleanup: could not check what is left (%v); delete namespace %s by hand if it exists", err, ns)
	case len(left) > 0:
		msg := fmt.Sprintf("cleanup: LEFT BEHIND: %s", strings.Join(left, ", "))
		if delErr != nil {
			msg += " (" + delErr.Error() + ")"
		}
		return msg
	}
	return fmt.Sprintf("cleanup: nothing left (namespace %s deleted; no namespace or pod labelled %s=%s remains)", ns, LabelID, id)
}

// Leftovers lists the namespaces and pods labelled with this diagnosis's id.
func Leftovers(ctx context.Context, cs kubernetes.Interface, id string) ([]string, error) {
	return workload.Leftovers(ctx, cs, LabelID+"="+id)
}
