package addons

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// fieldManager owns the fields the lab applies.
const fieldManager = "labrun"

// applier is the part of a typed client (a namespace's Services, the
// cluster's ClusterRoles, ...) that server-side apply needs.
type applier[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// apply creates obj, or makes the existing object of its name match it, by
// server-side apply: the fields obj sets become the lab's (forced), and
// those the cluster set (a Service's cluster IP) stay. It returns the object
// as the API server has it. Every addon that installs an object of its own
// goes through here.
func apply[T runtime.Object](ctx context.Context, c applier[T], obj T) (T, error) {
	var zero T
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return zero, fmt.Errorf("apply %T: not a Kubernetes object: %v", obj, err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return zero, fmt.Errorf("apply %T: %w", obj, err)
	}
	// An apply configuration names its kind; the typed object is left as given.
	typed := obj.DeepCopyObject()
	typed.GetObjectKind().SetGroupVersionKind(gvks[0])
	data, err := json.Marshal(typed)
	if err != nil {
		return zero, fmt.Errorf("apply %s %s: %w", gvks[0].Kind, m.GetName(), err)
	}
	out, err := c.Patch(ctx, m.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
	if err != nil {
		return zero, fmt.Errorf("apply %s %s: %w", gvks[0].Kind, m.GetName(), err)
	}
	return out, nil
}
