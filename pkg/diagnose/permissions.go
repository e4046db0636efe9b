package diagnose

import (
	"context"
	"fmt"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Tier is how deep a diagnosis may go.
type Tier int

const (
	// TierFacts reads API objects only: facts and a prediction.
	TierFacts Tier = iota
	// TierProbes also runs probe pods in a namespace of its own.
	TierProbes
	// TierCounters also runs a hostNetwork pod per node that reads the
	// node's conntrack counters (--allow-privileged).
	TierCounters
)

func (t Tier) String() string {
	return [...]string{"facts (read-only)", "probe pods", "node counters"}[t]
}

// MarshalText makes a Tier its name in JSON.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a Tier's name back, so a --json report decodes.
func (t *Tier) UnmarshalText(b []byte) error {
	for _, c := range []Tier{TierFacts, TierProbes, TierCounters} {
		if c.String() == string(b) {
			*t = c
			return nil
		}
	}
	return fmt.Errorf("unknown tier %q", b)
}

// Permission is one thing diagnose would do, and whether the caller may.
type Permission struct {
	Tier        Tier   `json:"tier"`
	Verb        string `json:"verb"`
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Allowed     bool   `json:"allowed"`
	Reason      string `json:"reason,omitempty"`
	// Cost is what the diagnosis loses without it.
	Cost string `json:"cost"`
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	where := "cluster-wide"
	if p.Namespace != "" {
		where = "in " + p.Namespace
	}
	return fmt.Sprintf("%s %s %s", p.Verb, r, where)
}

// permissionsFor lists what each tier needs; ns is the diagnosis's
// namespace (it does not exist yet: an access review does not need it to).
func permissionsFor(ns string) []Permission {
	const facts = "the prediction lacks it"
	return []Permission{
		{Tier: TierFacts, Verb: "list", Resource: "nodes", Cost: "no node kernels: " + facts},
		{Tier: TierFacts, Verb: "get", Resource: "configmaps", Namespace: SystemNamespace, Cost: "no kube-proxy mode, Corefile, Cilium or kubelet facts"},
		{Tier: TierFacts, Verb: "get", Resource: "services", Namespace: SystemNamespace, Cost: "no DNS VIP"},
		{Tier: TierFacts, Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices", Namespace: SystemNamespace, Cost: "no DNS endpoints (the race needs ≥ 2)"},
		{Tier: TierFacts, Verb: "get", Group: "apps", Resource: "daemonsets", Namespace: SystemNamespace, Cost: "no kube-proxy flags"},
		{Tier: TierFacts, Verb: "list", Group: "apps", Resource: "daemonsets", Cost: "pod networks outside kube-system not seen"},
		{Tier: TierFacts, Verb: "get", Group: "apps", Resource: "deployments", Namespace: SystemNamespace, Cost: "which DNS server runs is unknown"},
		{Tier: TierProbes, Verb: "create", Resource: "namespaces", Cost: "no measurement: diagnose measures only in a namespace of its own"},
		{Tier: TierProbes, Verb: "delete", Resource: "namespaces", Cost: "no measurement: diagnose makes nothing it cannot remove"},
		{Tier: TierProbes, Verb: "get", Resource: "namespaces", Cost: "no measurement: the final check that nothing is left needs it"},
		{Tier: TierProbes, Verb: "create", Resource: "pods", Namespace: ns, Cost: "no measurement"},
		{Tier: TierProbes, Verb: "list", Resource: "pods", Namespace: ns, Cost: "no measurement: probes cannot be awaited"},
		{Tier: TierProbes, Verb: "get", Resource: "pods", Subresource: "log", Namespace: ns, Cost: "no measurement: the samples are the probes' logs"},
	}
}

// Access is what the caller may do, checked before anything is made.
type Access struct {
	Permissions []Permission `json:"permissions"`
	// NamespaceDryRun is the server-side dry run of the namespace's
	// creation: admission webhooks and policy engines answer it too.
	NamespaceDryRun string `json:"namespaceDryRun"`
	// Tier is the deepest tier allowed and asked for.
	Tier   Tier `json:"tier"`
	Wanted Tier `json:"wanted"`
	// Missing says, per tier deeper than Tier that was wanted, what it lacks.
	Missing []string `json:"missing,omitempty"`
}

// CheckAccess asks the API server, with one SelfSubjectAccessReview per
// permission, what the caller may do, then dry-runs the namespace. Access
// reviews rather than a SelfSubjectRulesReview: the rules review is
// "incomplete" under webhook authorizers (EKS, GKE and AKS map cloud
// identities through one), and matching its rules would re-implement RBAC.
// Pods are dry-run later, in the namespace (Measure): a pod cannot be
// dry-run in a namespace that does not exist.
func CheckAccess(ctx context.Context, cs kubernetes.Interface, id string, wanted Tier) (Access, error) {
	a := Access{Wanted: wanted}
	ns := NamespaceObject(id)
	for _, p := range permissionsFor(ns.Name) {
		if p.Tier > wanted {
			continue
		}
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return a, fmt.Errorf("access review %s: %w", p, err)
		}
		p.Allowed = r.Status.Allowed && !r.Status.Denied
		p.Reason = strings.TrimSpace(r.Status.Reason + " " + r.Status.EvaluationError)
		a.Permissions = append(a.Permissions, p)
	}
	a.Tier = TierFacts
	if wanted >= TierProbes {
		ok := true
		var lacks []string
		for _, p := range a.Permissions {
			if p.Tier == TierProbes && !p.Allowed {
				ok = false
				lacks = append(lacks, fmt.Sprintf("%s (%s)", p, p.Cost))
			}
		}
		if ok {
			_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				ok = false
				a.NamespaceDryRun = "refused: " + err.Error()
				lacks = append(lacks, "namespace "+ns.Name+": the dry run was refused: "+err.Error())
			} else {
				a.NamespaceDryRun = "allowed"
			}
		}
		if ok {
			a.Tier = wanted // counters are decided by the pods' dry run
		} else {
			a.Missing = append(a.Missing, fmt.Sprintf("%s: %s", TierProbes, strings.Join(lacks, "; ")))
		}
	}
	return a, nil
}

// FactsMissing lists the read permissions refused, with their cost.
func (a Access) FactsMissing() []string {
	var out []string
	for _, p := range a.Permissions {
		if p.Tier == TierFacts && !p.Allowed {
			out = append(out, fmt.Sprintf("%s: %s", p, p.Cost))
		}
	}
	return out
}
