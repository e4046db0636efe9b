package addons

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func TestApplyCreatesThenUpdatesAndKeepsWhatTheClusterSet(t *testing.T) {
	ctx := context.Background()
	// The cluster gave the Service its address when something created it.
	cs := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "up", Namespace: namespace},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.53", Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "up", Namespace: namespace, Labels: map[string]string{"app": "up"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
	got, err := apply(ctx, cs.CoreV1().Services(namespace), svc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ClusterIP != "10.96.0.53" || got.Labels["app"] != "up" {
		t.Errorf("applied service: cluster IP %q, labels %v", got.Spec.ClusterIP, got.Labels)
	}
	if svc.Kind != "" || svc.APIVersion != "" {
		t.Errorf("apply changed the object it was given: %+v", svc.TypeMeta)
	}

	// Created where absent, then changed in place.
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "dnsmasq", Namespace: namespace},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}
	if _, err := apply(ctx, cs.AppsV1().Deployments(namespace), d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To[int32](3)
	if _, err := apply(ctx, cs.AppsV1().Deployments(namespace), d); err != nil {
		t.Fatal(err)
	}
	back, err := cs.AppsV1().Deployments(namespace).Get(ctx, "dnsmasq", metav1.GetOptions{})
	if err != nil || *back.Spec.Replicas != 3 {
		t.Errorf("deployment after the second apply: %v, %v", back, err)
	}
}

func TestApplyNamesWhatFailed(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("patch", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	_, err := apply(context.Background(), cs.CoreV1().ConfigMaps(namespace), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: namespace}})
	if err == nil || !strings.Contains(err.Error(), "apply ConfigMap cm: forbidden") {
		t.Errorf("err = %v", err)
	}
}

// recordApply is a client that records what apply sends.
type recordApply[T any] struct {
	name string
	body string
	opts metav1.PatchOptions
	out  T
}

func (r *recordApply[T]) Patch(_ context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, _ ...string) (T, error) {
	if pt != types.ApplyPatchType {
		return r.out, fmt.Errorf("patch type %s", pt)
	}
	r.name, r.body, r.opts = name, string(data), opts
	return r.out, nil
}

// A published manifest's objects (unstructured, through the dynamic client)
// go through the same apply as the typed ones.
func TestApplySendsAnApplyConfiguration(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": "calico-node", "namespace": "kube-system"}}}
	ru := &recordApply[*unstructured.Unstructured]{out: u}
	if _, err := apply(context.Background(), ru, u); err != nil {
		t.Fatal(err)
	}
	rc := &recordApply[*corev1.ConfigMap]{}
	if _, err := apply(context.Background(), rc, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ name, body, want string }{
		{ru.name, ru.body, `"kind":"DaemonSet"`}, {rc.name, rc.body, `"kind":"ConfigMap","apiVersion":"v1"`},
	} {
		if !strings.Contains(r.body, r.want) {
			t.Errorf("%s: sent %s, want %s in it", r.name, r.body, r.want)
		}
	}
	if rc.opts.FieldManager != fieldManager || rc.opts.Force == nil || !*rc.opts.Force {
		t.Errorf("patch options %+v", rc.opts)
	}
	if _, err := apply(context.Background(), ru, &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x"}}}); err == nil {
		t.Error("an object without a kind: want an error")
	}
}
