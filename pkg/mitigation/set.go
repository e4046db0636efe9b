package mitigation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Set is a composition of mitigations, written "a+b". Its members are sorted
// by id so that "a+b" and "b+a" are the same set with the same id.
type Set []Mitigation

// None is the baseline set.
const None = "none"

// ParseSet parses "a+b+c". Every problem is reported, joined.
func ParseSet(s string) (Set, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty mitigation set")
	}
	var set Set
	var errs []error
	seen := map[string]bool{}
	for _, id := range strings.Split(s, "+") {
		id = strings.TrimSpace(id)
		m, err := Lookup(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := id
		if m.Option == "ndots" {
			key = "ndots-N"
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%q appears twice", key))
			continue
		}
		seen[key] = true
		set = append(set, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(set) > 1 && seen[None] {
		return nil, fmt.Errorf("%q cannot be combined with other mitigations", None)
	}
	for _, m := range set {
		for other, why := range m.Excludes {
			if seen[other] {
				return nil, fmt.Errorf("%q and %q cannot be combined: %s", m.ID, other, why)
			}
		}
	}
	slices.SortFunc(set, func(a, b Mitigation) int { return strings.Compare(a.ID, b.ID) })
	return set, nil
}

// MustParseSet is ParseSet for constants in tests and code; it panics on error.
func MustParseSet(s string) Set {
	set, err := ParseSet(s)
	if err != nil {
		panic(err)
	}
	return set
}

// ID is the set's canonical id: sorted member ids joined with "+".
func (s Set) ID() string {
	ids := make([]string, len(s))
	for i, m := range s {
		ids[i] = m.ID
	}
	return strings.Join(ids, "+")
}

func (s Set) String() string { return s.ID() }

// IsNone reports whether s is the baseline.
func (s Set) IsNone() bool { return len(s) == 1 && s[0].ID == None }

// Has reports whether the set contains the mitigation id (ndots-N matches
// any ndots-K).
func (s Set) Has(id string) bool {
	for _, m := range s {
		if m.ID == id || (id == "ndots-N" && m.Option == "ndots") {
			return true
		}
	}
	return false
}

// ClusterLevel returns the members that change the cluster, not the pod.
func (s Set) ClusterLevel() Set {
	var out Set
	for _, m := range s {
		if m.Where.ClusterLevel() {
			out = append(out, m)
		}
	}
	return out
}

// PodLevel returns the members that change only the probe pod (or its names).
func (s Set) PodLevel() Set {
	var out Set
	for _, m := range s {
		if m.Where.PodLevel() {
			out = append(out, m)
		}
	}
	return out
}

// Applicability says whether a set can run with a back end.
type Applicability struct {
	Applies bool
	Reason  string   // why not, when !Applies
	Ignored []string // members the back end is known to ignore (the cell still runs)
}

// For returns how s applies to back end r: not at all if any member cannot
// apply; otherwise which members the back end that really runs ignores
// (grpc-ares with grpc-native is getaddrinfo, which honours resolv.conf).
func (s Set) For(r string) Applicability {
	var a Applicability
	eff := s.EffectiveResolver(r)
	for _, m := range s {
		if ok, why := m.AppliesToResolver(r); !ok {
			return Applicability{Reason: fmt.Sprintf("%s on %s: %s", m.ID, r, why)}
		}
		if m.Ignores(eff) {
			a.Ignored = append(a.Ignored, m.ID)
		}
	}
	a.Applies = true
	return a
}

// EffectiveResolver is the back end a probe really runs: gRPC C-core with
// GRPC_DNS_RESOLVER=native is the grpc-native back end.
func (s Set) EffectiveResolver(r string) string {
	if r == GRPCAres && s.Has("grpc-native") {
		return GRPCNative
	}
	return r
}
