package scenario

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"labrun.dev/labrun/pkg/mitigation"
)

// Claims are numbered 1 to ClaimCount (PHENOMENON.md; pkg/analyze checks
// them). ClaimVerdicts are the verdicts pkg/analyze gives. pkg/expect's tests
// hold both to pkg/analyze's lists, which this package cannot import.
const ClaimCount = 11

var ClaimVerdicts = []string{"pass", "fail", "not-run"}

// Expect is what every run of the scenario must show: the verdict of some
// claims and bounds on the numbers of some cells. A run that breaks one
// exits with its own code (docs/exit-codes.md).
type Expect struct {
	// Claims maps a claim number ("1" … "11") to the verdict it must have.
	Claims map[string]string `yaml:"claims,omitempty" json:"claims,omitempty"`
	// Cells are bounds on the cells a selector matches.
	Cells []CellExpect `yaml:"cells,omitempty" json:"cells,omitempty"`

	src source // where each field was written, for results and messages
}

// CellExpect bounds the numbers of every cell Match selects.
type CellExpect struct {
	Match Match   `yaml:"match,omitempty" json:"match,omitempty"`
	Max   *Bounds `yaml:"max,omitempty" json:"max,omitempty"`
	Min   *Bounds `yaml:"min,omitempty" json:"min,omitempty"`
}

// Match selects cells: each field is a glob pattern (path.Match) on one
// property of a cell; an empty field matches anything, so an empty Match
// selects every cell.
type Match struct {
	Cluster    string `yaml:"cluster,omitempty" json:"cluster,omitempty"`       // the cluster entry's name
	PodNetwork string `yaml:"podNetwork,omitempty" json:"podNetwork,omitempty"` // its pod network
	KubeProxy  string `yaml:"kubeProxy,omitempty" json:"kubeProxy,omitempty"`   // its kube-proxy mode
	DNS        string `yaml:"dns,omitempty" json:"dns,omitempty"`               // its DNS server
	Resolver   string `yaml:"resolver,omitempty" json:"resolver,omitempty"`     // as the scenario names it
	// Mitigation is matched against the set's canonical id (none,
	// single-request-reopen, grpc-native+single-request-reopen); a set
	// written without wildcards is made canonical first, so a+b matches b+a.
	Mitigation string `yaml:"mitigation,omitempty" json:"mitigation,omitempty"`
	Chaos      string `yaml:"chaos,omitempty" json:"chaos,omitempty"` // bare, emu-5.0-5.5, … (Chaos.ID)
}

// Bounds are limits on a cell's numbers; a nil field is not bounded.
type Bounds struct {
	P50 *Duration `yaml:"p50,omitempty" json:"p50,omitempty"`
	P99 *Duration `yaml:"p99,omitempty" json:"p99,omitempty"`
	// ShareAt5s is the share of lookups at 5 s multiples (± 0.5 s), the
	// symptom's signature as the claims count it.
	ShareAt5s *Share `yaml:"shareAt5s,omitempty" json:"shareAt5s,omitempty"`
	// HitShare is the share of gRPC calls hit by the race: timed out or
	// took at least 1 s (pkg/analyze, claim 4).
	HitShare *Share `yaml:"hitShare,omitempty" json:"hitShare,omitempty"`
	// Timeouts is a count of lookups that timed out, or a share of all.
	Timeouts *Amount `yaml:"timeouts,omitempty" json:"timeouts,omitempty"`
	// EmulatorDrops is the race emulator's drops during the cell, summed
	// over nodes.
	EmulatorDrops *int `yaml:"emulatorDrops,omitempty" json:"emulatorDrops,omitempty"`
}

// empty reports whether b bounds nothing.
func (b *Bounds) empty() bool { return b == nil || *b == Bounds{} }

// ClaimExpectation is one entry of expect.claims.
type ClaimExpectation struct {
	N       int
	Verdict string
	Source  string // FILE:LINE
}

// ClaimExpectations lists expect.claims by claim number.
func (e Expect) ClaimExpectations() []ClaimExpectation {
	var out []ClaimExpectation
	for k, v := range e.Claims {
		n, _ := strconv.Atoi(k) // validated
		out = append(out, ClaimExpectation{N: n, Verdict: v, Source: e.Source("claims." + k)})
	}
	slices.SortFunc(out, func(a, b ClaimExpectation) int { return a.N - b.N })
	return out
}

// Source is FILE:LINE of a field of the expect block, by its path below
// expect ("claims.3", "cells[0].max.p99"); a field left out is reported
// where its parent was written. Empty for an Expect not read from a file.
func (e Expect) Source(field string) string {
	if e.src.file == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", e.src.file, e.src.line("expect."+field))
}

// Matches reports whether the scenario cell c is selected. Patterns are
// validated when the scenario loads; a bad one matches nothing.
func (m Match) Matches(c Cell) bool {
	for _, f := range m.fields() {
		if f.pattern == "" {
			continue
		}
		if ok, err := path.Match(f.pattern, f.value(c)); !ok || err != nil {
			return false
		}
	}
	return true
}

// mitigationPattern is Mitigation with a literal set made canonical.
func (m Match) mitigationPattern() string {
	if m.Mitigation == "" || isGlob(m.Mitigation) {
		return m.Mitigation
	}
	if set, err := mitigation.ParseSet(m.Mitigation); err == nil {
		return set.ID()
	}
	return m.Mitigation
}

func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// String writes the selector as "resolver=glibc mitigation=none", the
// fields in a fixed order, or "every cell".
func (m Match) String() string {
	var parts []string
	for _, f := range m.fields() {
		if f.pattern != "" {
			parts = append(parts, f.name+"="+f.written)
		}
	}
	if len(parts) == 0 {
		return "every cell"
	}
	return strings.Join(parts, " ")
}

type matchField struct {
	name, written string
	pattern       string            // as matched: a literal mitigation set made canonical
	value         func(Cell) string // the property of a cell it is matched against
}

func (m Match) fields() []matchField {
	return []matchField{
		{"cluster", m.Cluster, m.Cluster, func(c Cell) string { return c.Shape.Cluster.Name }},
		{"podNetwork", m.PodNetwork, m.PodNetwork, func(c Cell) string { return c.Shape.Cluster.PodNetwork }},
		{"kubeProxy", m.KubeProxy, m.KubeProxy, func(c Cell) string { return c.Shape.Cluster.KubeProxy }},
		{"dns", m.DNS, m.DNS, func(c Cell) string { return c.Shape.Cluster.DNS.Server }},
		{"resolver", m.Resolver, m.Resolver, func(c Cell) string { return c.Resolver }},
		{"mitigation", m.Mitigation, m.mitigationPattern(), Cell.MitigationID},
		{"chaos", m.Chaos, m.Chaos, func(c Cell) string { return c.Chaos.ID() }},
	}
}

// Share is a fraction from 0 to 1, written as a number (0.005) or a
// percentage ("0.5%").
type Share float64

// ParseShare parses "0.005" or "0.5%".
func ParseShare(s string) (Share, error) {
	s = strings.TrimSpace(s)
	num, pct := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, fmt.Errorf("share %q: want a fraction from 0 to 1 (0.005) or a percentage (0.5%%)", s)
	}
	if pct {
		v /= 100
	}
	return Share(v), nil
}

// String writes the share as a percentage: 0.5%.
func (s Share) String() string { return strconv.FormatFloat(100*float64(s), 'g', 4, 64) + "%" }

// UnmarshalYAML parses a Share from its text.
func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseShare(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes the fraction, exactly.
func (s Share) MarshalYAML() (any, error) { return float64(s), nil }

// Amount is a count ("3") or a share of lookups ("0.5%").
type Amount struct {
	Value   float64 // the count, or the percentage points as written
	Percent bool
}

// ParseAmount parses a whole count or a percentage.
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	num, pct := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || (!pct && v != float64(int64(v))) {
		return Amount{}, fmt.Errorf("%q: want a whole count (3) or a share of lookups (0.5%%)", s)
	}
	return Amount{Value: v, Percent: pct}, nil
}

// Share is the amount as a fraction of all lookups (Percent only).
func (a Amount) Share() float64 { return a.Value / 100 }

func (a Amount) String() string {
	s := strconv.FormatFloat(a.Value, 'g', -1, 64)
	if a.Percent {
		s += "%"
	}
	return s
}

// UnmarshalYAML parses an Amount from its text.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseAmount(n.Value)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalYAML writes the Amount as text.
func (a Amount) MarshalYAML() (any, error) { return a.String(), nil }

// MarshalText lets JSON carry the same text.
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }
