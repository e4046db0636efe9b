package diagnose

import (
	"context"
	"slices"
	"strings"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// rbac answers access reviews: allowed unless "verb resource[/sub]" is in deny.
func rbac(cs *fake.Clientset, deny ...string) {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview).DeepCopy()
		ra := r.Spec.ResourceAttributes
		key := ra.Verb + " " + ra.Resource
		if ra.Subresource != "" {
			key += "/" + ra.Subresource
		}
		r.Status.Allowed = !slices.Contains(deny, key)
		if !r.Status.Allowed {
			r.Status.Reason = "no RBAC policy matched"
		}
		return true, r, nil
	})
}

// dryRunNamespaces answers namespace creation: only dry runs are expected,
// refused with refuse when it is not "".
func dryRunNamespaces(t *testing.T, cs *fake.Clientset, refuse string) {
	cs.PrependReactor("create", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.CreateActionImpl).CreateOptions
		if !slices.Equal(opts.DryRun, []string{metav1.DryRunAll}) {
			t.Errorf("namespace created without dry run: %+v", opts)
		}
		if refuse != "" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "labrun-diag-x", errString(refuse))
		}
		return true, a.(k8stesting.CreateAction).GetObject(), nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func TestCheckAccess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wanted   Tier
		deny     []string
		refuseNS string
		tier     Tier
		missing  string
		facts    string
	}{
		{"everything allowed", TierCounters, nil, "", TierCounters, "", ""},
		{"probes asked, allowed", TierProbes, nil, "", TierProbes, "", ""},
		{"facts only asked", TierFacts, nil, "", TierFacts, "", ""},
		{"read-only role", TierCounters, []string{"create namespaces", "create pods", "delete namespaces"}, "", TierFacts,
			"create namespaces cluster-wide (no measurement: diagnose measures only in a namespace of its own)", ""},
		{"no logs", TierProbes, []string{"get pods/log"}, "", TierFacts, "get pods/log in labrun-diag-x (no measurement: the samples are the probes' logs)", ""},
		{"policy engine refuses the namespace", TierProbes, nil, "denied by policy require-owner-label", TierFacts, "the dry run was refused", ""},
		{"no nodes", TierProbes, []string{"list nodes"}, "", TierProbes, "", "list nodes cluster-wide: no node kernels"},
	} {
		cs := fake.NewClientset()
		rbac(cs, tc.deny...)
		dryRunNamespaces(t, cs, tc.refuseNS)
		a, err := CheckAccess(context.Background(), cs, "x", tc.wanted)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if a.Tier != tc.tier {
			t.Errorf("%s: tier %s, want %s (missing %q)", tc.name, a.Tier, tc.tier, a.Missing)
		}
		if got := strings.Join(a.Missing, "\n"); (tc.missing == "") != (got == "") || !strings.Contains(got, tc.missing) {
			t.Errorf("%s: missing %q, want %q", tc.name, got, tc.missing)
		}
		if got := strings.Join(a.FactsMissing(), "\n"); (tc.facts == "") != (got == "") || !strings.Contains(got, tc.facts) {
			t.Errorf("%s: facts missing %q, want %q", tc.name, got, tc.facts)
		}
		for _, p := range a.Permissions {
			if p.Tier > tc.wanted {
				t.Errorf("%s: %s reviewed though tier %s was not asked for", tc.name, p, p.Tier)
			}
		}
		if list, _ := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
			t.Errorf("%s: the check made namespaces: %v", tc.name, list.Items)
		}
	}
}

func TestCheckAccessReviewFails(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("authorizer down")
	})
	if _, err := CheckAccess(context.Background(), cs, "x", TierProbes); err == nil || !strings.Contains(err.Error(), "access review list nodes") {
		t.Errorf("got %v", err)
	}
}
