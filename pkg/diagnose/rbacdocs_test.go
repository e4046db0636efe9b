package diagnose

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// grants reports whether the roles of a manifest grant p (a small RBAC
// matcher: exact verbs, groups, resources; a ClusterRole bound cluster-wide
// grants every namespace, a Role only its own).
func grants(t *testing.T, file string, p Permission) bool {
	res := p.Resource
	if p.Subresource != "" {
		res += "/" + p.Subresource
	}
	match := func(rules []rbacv1.PolicyRule) bool {
		for _, r := range rules {
			if slices.Contains(r.Verbs, p.Verb) && slices.Contains(r.APIGroups, p.Group) && slices.Contains(r.Resources, res) {
				return true
			}
		}
		return false
	}
	for _, o := range loadObjects(t, file) {
		switch v := o.(type) {
		case *rbacv1.ClusterRole:
			if match(v.Rules) {
				return true
			}
		case *rbacv1.Role:
			if v.Namespace == p.Namespace && p.Namespace != "" && match(v.Rules) {
				return true
			}
		}
	}
	return false
}

// The manifests of docs/diagnose grant exactly what CheckAccess asks for
// each tier, so they cannot drift from the code.
func TestRBACManifests(t *testing.T) {
	files := map[Tier][]string{
		TierFacts:    {"../../../docs/diagnose/rbac-facts.yaml"},
		TierProbes:   {"../../../docs/diagnose/rbac-facts.yaml", "../../../docs/diagnose/rbac-probes.yaml"},
		TierCounters: {"../../../docs/diagnose/rbac-facts.yaml", "../../../docs/diagnose/rbac-counters.yaml"},
	}
	for tier, fs := range files {
		for _, p := range permissionsFor(NamespacePrefix + "x") {
			if p.Tier > tier {
				continue
			}
			ok := slices.ContainsFunc(fs, func(f string) bool { return grants(t, f, p) })
			if !ok {
				t.Errorf("tier %s: %v grant no %s", tier, fs, p)
			}
		}
	}
	// A tier's manifest must not grant a deeper tier's needs by itself.
	for _, p := range permissionsFor(NamespacePrefix + "x") {
		if p.Tier == TierProbes && grants(t, "../../../docs/diagnose/rbac-facts.yaml", p) {
			t.Errorf("the facts manifest grants %s", p)
		}
	}
}
