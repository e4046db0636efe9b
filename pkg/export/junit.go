package export

import (
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/results"
)

// JUnitVersion is recorded as the property labrun.format of every suite.
const JUnitVersion = "labrun.dev/junit/v1"

// JUnitFile is the JUnit export's file name under the export directory.
const JUnitFile = "junit.xml"

// The common JUnit XML schema (as Jenkins, GitLab, GitHub actions and
// go-junit-report read it): testsuites > testsuite > testcase, with a
// failure, error or skipped child for a case that did not pass.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr,omitempty"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitSkipped `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func writeJUnit(dir string, src *Source) ([]string, error) {
	data, err := junitXML(src)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, JUnitFile)
	return []string{path}, results.WriteFile(path, data)
}

// junitXML makes three suites: the claims, the expectations (when the run
// has any) and the cells, so a CI page shows a failed claim, a broken
// expectation and an incomplete cell apart.
func junitXML(src *Source) ([]byte, error) {
	a := src.Analysis
	props := []junitProperty{{"labrun.format", JUnitVersion}, {"run", a.Run}, {"scenario", a.Scenario},
		{"kernel", a.Env.Kernel}, {"kubernetes", a.Env.Kubernetes}}
	stamp := ""
	if !a.Env.Started.IsZero() {
		stamp = a.Env.Started.UTC().Format("2006-01-02T15:04:05")
	}
	class := "labrun." + a.Scenario
	suites := []junitSuite{claimSuite(a.Claims, class+".claims")}
	if len(src.Expectations) > 0 {
		suites = append(suites, expectationSuite(src.Expectations, class+".expectations"))
	}
	cells, err := cellSuite(src, class+".cells")
	if err != nil {
		return nil, err
	}
	suites = append(suites, cells)
	out := junitSuites{Name: "labrun " + a.Run}
	for i := range suites {
		s := &suites[i]
		s.Properties, s.Timestamp = props, stamp
		for _, c := range s.Cases {
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Error != nil:
				s.Errors++
			case c.Skipped != nil:
				s.Skipped++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	out.Suites = suites
	data, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JUnit XML: %w", err)
	}
	return append([]byte(xml.Header), append(data, '\n')...), nil
}

func claimSuite(claims []analyze.Claim, class string) junitSuite {
	s := junitSuite{Name: "claims"}
	for _, c := range claims {
		tc := junitCase{Name: fmt.Sprintf("claim %d: %s", c.N, c.Text), Classname: class}
		switch c.Verdict {
		case analyze.Pass:
			tc.SystemOut = c.Evidence
		case analyze.Fail:
			tc.Failure = &junitProblem{Message: c.Evidence, Type: "claim-failed", Text: c.Evidence}
		default: // not-run, or a verdict a newer labrun adds: not a pass
			tc.Skipped = &junitSkipped{Message: fmt.Sprintf("%s: %s", c.Verdict, c.Evidence)}
		}
		s.Cases = append(s.Cases, tc)
	}
	return s
}

func expectationSuite(exps []expect.Result, class string) junitSuite {
	s := junitSuite{Name: "expectations"}
	for _, e := range exps {
		tc := junitCase{Name: e.Name, Classname: class}
		detail := fmt.Sprintf("bound %s, measured %s", e.Bound, e.Measured)
		if e.Cell != "" {
			detail += ", cell " + e.Cell
		}
		if e.Source != "" {
			detail += " (" + e.Source + ")"
		}
		if e.Reason != "" {
			detail += ": " + e.Reason
		}
		switch e.Verdict {
		case expect.Met:
			tc.SystemOut = detail
		case expect.Broken:
			tc.Failure = &junitProblem{Message: detail, Type: "expectation-broken", Text: detail}
		default: // not-evaluated never counts as met
			tc.Skipped = &junitSkipped{Message: fmt.Sprintf("%s: %s", e.Verdict, detail)}
		}
		s.Cases = append(s.Cases, tc)
	}
	return s
}

// cellSuite has a case per cell: complete passes, incomplete is an error
// (the lab failed to measure, not the system under test), not run is skipped.
func cellSuite(src *Source, class string) (junitSuite, error) {
	s := junitSuite{Name: "cells"}
	var total time.Duration
	for _, c := range src.Analysis.Cells {
		tc := junitCase{Name: c.ID, Classname: class}
		st, ok, err := src.Run.ReadStatus(c.ID)
		if err != nil {
			return s, err
		}
		if ok && !st.Started.IsZero() && st.Finished.After(st.Started) {
			d := st.Finished.Sub(st.Started)
			total += d
			tc.Time = strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
		}
		switch c.State {
		case results.Complete:
			if c.Stats != nil {
				tc.SystemOut = fmt.Sprintf("%d lookups, p50 %g ms, p99 %g ms, %d at 5 s multiples", c.Stats.Count, c.Stats.P50MS, c.Stats.P99MS, c.Stats.Clustered)
			}
		case results.Incomplete:
			tc.Error = &junitProblem{Message: c.Reason, Type: "cell-incomplete", Text: c.Reason}
		default:
			tc.Skipped = &junitSkipped{Message: fmt.Sprintf("%s: %s", c.State, c.Reason)}
		}
		s.Cases = append(s.Cases, tc)
	}
	if total > 0 {
		s.Time = strconv.FormatFloat(total.Seconds(), 'f', 3, 64)
	}
	return s, nil
}
