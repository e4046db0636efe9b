package export

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
)

// The common JUnit schema as a CI reader sees it, declared apart from the
// writer's types so that the test does not read back its own assumptions.
type ciSuites struct {
	XMLName  xml.Name  `xml:"testsuites"`
	Tests    int       `xml:"tests,attr"`
	Failures int       `xml:"failures,attr"`
	Errors   int       `xml:"errors,attr"`
	Skipped  int       `xml:"skipped,attr"`
	Suites   []ciSuite `xml:"testsuite"`
}

type ciSuite struct {
	Name       string `xml:"name,attr"`
	Tests      int    `xml:"tests,attr"`
	Failures   int    `xml:"failures,attr"`
	Errors     int    `xml:"errors,attr"`
	Skipped    int    `xml:"skipped,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []struct {
		Name    string `xml:"name,attr"`
		Failure *struct {
			Message string `xml:"message,attr"`
		} `xml:"failure"`
		Error *struct {
			Message string `xml:"message,attr"`
		} `xml:"error"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
	} `xml:"testcase"`
}

type counts struct{ tests, failures, errors, skipped int }

func TestJUnit(t *testing.T) {
	for _, withExpectations := range []bool{true, false} {
		src := loadSynthetic(t, withExpectations)
		dir := t.TempDir()
		if _, err := Write(dir, src, JUnit); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, JUnitFile))
		if err != nil {
			t.Fatal(err)
		}
		var got ciSuites
		if err := xml.Unmarshal(data, &got); err != nil {
			t.Fatalf("junit.xml does not parse as JUnit: %v", err)
		}

		// What each suite must hold, counted from the analysis.
		want := map[string]counts{}
		var c counts
		for _, cl := range src.Analysis.Claims {
			c.tests++
			switch cl.Verdict {
			case analyze.Fail:
				c.failures++
			case analyze.NotRun:
				c.skipped++
			}
		}
		want["claims"] = c
		if withExpectations {
			// one met, one broken, one not evaluated
			want["expectations"] = counts{tests: 3, failures: 1, skipped: 1}
		}
		c = counts{}
		for _, cell := range src.Analysis.Cells {
			c.tests++
			switch cell.State {
			case results.Incomplete:
				c.errors++
			case results.NotRun:
				c.skipped++
			}
		}
		want["cells"] = c
		if c.errors == 0 || c.skipped == 0 {
			t.Fatalf("synthetic run has cells %+v; want incomplete and not-run ones", c)
		}

		if len(got.Suites) != len(want) {
			t.Fatalf("%d suites, want %d", len(got.Suites), len(want))
		}
		var total counts
		for _, s := range got.Suites {
			// Count the children, not the attributes alone: both must agree.
			var seen counts
			for _, tc := range s.Cases {
				seen.tests++
				switch {
				case tc.Failure != nil:
					seen.failures++
				case tc.Error != nil:
					seen.errors++
				case tc.Skipped != nil:
					seen.skipped++
				}
			}
			attrs := counts{s.Tests, s.Failures, s.Errors, s.Skipped}
			if seen != want[s.Name] || attrs != want[s.Name] {
				t.Errorf("suite %s: children %+v, attributes %+v, want %+v", s.Name, seen, attrs, want[s.Name])
			}
			total.tests += seen.tests
			total.failures += seen.failures
			total.errors += seen.errors
			total.skipped += seen.skipped
			var format string
			for _, p := range s.Properties {
				if p.Name == "labrun.format" {
					format = p.Value
				}
			}
			if format != JUnitVersion {
				t.Errorf("suite %s: labrun.format %q, want %q", s.Name, format, JUnitVersion)
			}
		}
		if (counts{got.Tests, got.Failures, got.Errors, got.Skipped}) != total {
			t.Errorf("testsuites attributes %d/%d/%d/%d, want the sum %+v", got.Tests, got.Failures, got.Errors, got.Skipped, total)
		}
	}
}

func TestJUnitVerdicts(t *testing.T) {
	claims := []analyze.Claim{{N: 1, Verdict: analyze.Pass, Evidence: "ok"}, {N: 2, Verdict: analyze.Fail, Evidence: "musl <delayed> & more"},
		{N: 3, Verdict: analyze.NotRun, Evidence: "no cell"}, {N: 4, Verdict: "a-new-verdict", Evidence: "?"}}
	s := claimSuite(claims, "c")
	if s.Cases[0].Failure != nil || s.Cases[0].Skipped != nil || s.Cases[1].Failure == nil || s.Cases[2].Skipped == nil || s.Cases[3].Skipped == nil {
		t.Errorf("claim cases %+v", s.Cases)
	}
	e := expectationSuite([]expect.Result{{Name: "x", Verdict: expect.Met}, {Name: "y", Verdict: expect.Broken, Bound: "<= 1", Measured: "2"},
		{Name: "z", Verdict: expect.NotEvaluated}}, "c")
	if e.Cases[0].Failure != nil || e.Cases[1].Failure == nil || e.Cases[1].Failure.Message != "bound <= 1, measured 2" || e.Cases[2].Skipped == nil {
		t.Errorf("expectation cases %+v", e.Cases)
	}
}
