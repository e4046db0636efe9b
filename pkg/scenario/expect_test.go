package scenario

import (
	"strings"
	"testing"
)

func TestMatchMatches(t *testing.T) {
	s, err := LoadFile("testdata/valid-axes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cells := s.Expand()
	tests := []struct {
		match Match
		want  func(Cell) bool
	}{
		{Match{}, func(Cell) bool { return true }},
		{Match{Resolver: "glibc"}, func(c Cell) bool { return c.Resolver == "glibc" }},
		{Match{Resolver: "g*"}, func(c Cell) bool { return strings.HasPrefix(c.Resolver, "g") }},
		{Match{Mitigation: "none"}, func(c Cell) bool { return c.Mitigations.IsNone() }},
		{Match{Mitigation: "*single-request-reopen*"}, func(c Cell) bool { return c.Mitigations.Has("single-request-reopen") }},
		{Match{Chaos: "bare"}, func(c Cell) bool { return !c.UnderEmulator() }},
		{Match{Chaos: "emu-*", Resolver: "grpc-ares"}, func(c Cell) bool { return c.UnderEmulator() && c.Resolver == "grpc-ares" }},
		{Match{Cluster: "ipvs", Mitigation: "grpc-native+single-request-reopen"}, func(c Cell) bool {
			return c.Shape.Cluster.Name == "ipvs" && c.Mitigations.Has("grpc-native") && c.Mitigations.Has("single-request-reopen")
		}},
		{Match{KubeProxy: "ipvs"}, func(c Cell) bool { return c.Shape.Cluster.KubeProxy == "ipvs" }},
		{Match{Cluster: "[bad"}, func(Cell) bool { return false }},
	}
	for _, tt := range tests {
		n := 0
		for _, c := range cells {
			got := tt.match.Matches(c)
			if got != tt.want(c) {
				t.Errorf("%s matches %s = %v, want %v", tt.match, c.ID, got, !got)
			}
			if got {
				n++
			}
		}
		if tt.match.Cluster != "[bad" && n == 0 {
			t.Errorf("%s matched no cell of testdata/valid-axes.yaml: the test proves nothing", tt.match)
		}
	}
}

// A set written without wildcards matches whatever order its members are in.
func TestMatchCanonicalSet(t *testing.T) {
	s, err := LoadFile("testdata/valid-expect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range s.Expand() {
		if s.Expect.Cells[1].Match.Matches(c) {
			ids = append(ids, c.ID)
		}
	}
	if want := "default_grpc-ares_grpc-native+single-request-reopen"; strings.Join(ids, " ") != want {
		t.Errorf("%s matched %v, want %s", s.Expect.Cells[1].Match, ids, want)
	}
}

func TestExpectSources(t *testing.T) {
	s, err := LoadFile("testdata/valid-expect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range s.Expect.ClaimExpectations() {
		got = append(got, c.Verdict+"@"+c.Source)
	}
	want := "pass@testdata/valid-expect.yaml:9 pass@testdata/valid-expect.yaml:9 not-run@testdata/valid-expect.yaml:9 fail@testdata/valid-expect.yaml:9"
	if strings.Join(got, " ") != want {
		t.Errorf("claims = %v, want %s", got, want)
	}
	if c := s.Expect.ClaimExpectations(); c[3].N != 11 {
		t.Errorf("claims not in numeric order: %+v", c)
	}
	for field, want := range map[string]string{
		"cells[1].max.hitShare": "testdata/valid-expect.yaml:14",
		"cells[2].min.p50":      "testdata/valid-expect.yaml:16",
		"cells[3]":              "testdata/valid-expect.yaml:18",
		"cells[3].min.p99":      "testdata/valid-expect.yaml:18", // not written: its parent's line
	} {
		if got := s.Expect.Source(field); got != want {
			t.Errorf("Source(%s) = %s, want %s", field, got, want)
		}
	}
}

func TestParseShareAndAmount(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "0.005": 0.005, "0.5%": 0.005, " 10 % ": 0.1, "100%": 1} {
		got, err := ParseShare(in)
		if err != nil || float64(got) != want {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]Amount{"0": {0, false}, "12": {12, false}, "1.5%": {1.5, true}} {
		got, err := ParseAmount(in)
		if err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != strings.TrimSpace(in) {
			t.Errorf("Amount %q writes as %q", in, got)
		}
	}
	for _, in := range []string{"", "lots", "1.5", "%"} {
		if _, err := ParseAmount(in); err == nil {
			t.Errorf("ParseAmount(%q) took it", in)
		}
	}
	if _, err := ParseShare("x%"); err == nil {
		t.Error(`ParseShare("x%") took it`)
	}
}
