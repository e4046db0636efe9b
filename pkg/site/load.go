package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/expect"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
)

// Where the numbers of a run came from (Run.Source).
const (
	FromSummary = "summary.json"
	FromRaw     = "raw files"
)

// readRun reads one run directory and writes its page under the site
// (runs/<name>/). Its summary.json is used when it is current (schema
// labrun.dev/summary/v1, written after every status, counters, capture and
// env file, and before index.html): the page is the run's own index.html
// with its plots. Otherwise the analysis is rebuilt from the raw files
// (pkg/analyze) and the page rendered by pkg/report into the site, never
// into the run directory, which stays as it was. A run that can be read
// neither way comes back with Problem set: it is listed, never fatal.
func readRun(c candidate, siteDir string) Run {
	r := Run{Name: c.Name, Date: dateFromName(c.Name), dir: c.Dir}
	run := results.RunDir{Dir: c.Dir}
	env, _, envErr := run.ReadEnv()
	if envErr == nil && !env.Started.IsZero() {
		r.Date = env.Started.UTC()
	}
	s, why := currentSummary(run)
	pageDir := filepath.Join(siteDir, runPageDir(c.Name))
	if err := os.RemoveAll(pageDir); err != nil {
		r.Problem = fmt.Sprintf("cannot clear its page directory: %v", err)
		return r
	}
	if s != nil && why == "" {
		if err := copyPage(run, pageDir); err != nil {
			why = fmt.Sprintf("its report page could not be copied (%v)", err)
		} else {
			r.Source, r.pageSource = FromSummary, run.IndexPath()
			fill(&r, run, s)
			return r
		}
	}
	a, err := analyze.Load(run)
	if err != nil {
		r.Problem = fmt.Sprintf("%s, and the raw files could not be analysed: %s", why, inRun(run, err))
		if s != nil {
			r.Problem = fmt.Sprintf("%s, and the raw files could not be analysed to draw a new one: %s", why, inRun(run, err))
		}
		return r
	}
	rebuilt := report.NewSummary(a)
	if sc, err := run.ReadScenario(); err == nil {
		// The expectations of the recorded scenario, judged again, as
		// `labrun report` does (analyze.Run read the same file).
		rebuilt.SetExpectations(expect.Evaluate(sc.Expect, a))
	}
	if err := writePage(pageDir, rebuilt, a); err != nil {
		r.Problem = fmt.Sprintf("its page could not be written: %v", err)
		return r
	}
	r.Source, r.Note = FromRaw, why+"; rebuilt from the raw files"
	fill(&r, run, &rebuilt)
	return r
}

// inRun words err relative to the run directory: the index names the run
// already, and the path it was read from means nothing to a reader elsewhere.
func inRun(run results.RunDir, err error) string {
	msg := strings.ReplaceAll(err.Error(), "analyze "+run.Dir+": ", "")
	return strings.ReplaceAll(msg, run.Dir+string(filepath.Separator), "")
}

// currentSummary returns the run's summary.json when it can stand for the
// run; otherwise nil and why not, in words for the index.
func currentSummary(run results.RunDir) (*report.Summary, string) {
	data, err := os.ReadFile(run.SummaryPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "no summary.json"
	}
	if err != nil {
		return nil, fmt.Sprintf("summary.json unreadable (%v)", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Sprintf("summary.json is not JSON (%v)", err)
	}
	if head.Schema != report.SummarySchema {
		return nil, fmt.Sprintf("summary.json has schema %q, not %q", head.Schema, report.SummarySchema)
	}
	var s report.Summary
	// Fields added within a schema are allowed: decode loosely.
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Sprintf("summary.json does not decode (%v)", err)
	}
	if newer, ok := newestInput(run, fileTime(run.SummaryPath())); ok {
		return nil, fmt.Sprintf("summary.json is older than %s (the run went on after its report)", newer)
	}
	if fileTime(run.IndexPath()).Before(fileTime(run.SummaryPath())) {
		return &s, "index.html is missing or older than summary.json"
	}
	return &s, ""
}

// newestInput names a file of the run that the analysis reads and that
// changed after t.
func newestInput(run results.RunDir, t time.Time) (string, bool) {
	files := []string{run.ScenarioPath(), run.EnvPath()}
	for _, pat := range []string{"status/*.json", "counters/*.json", "captures/*.json"} {
		m, _ := filepath.Glob(filepath.Join(run.Dir, pat))
		files = append(files, m...)
	}
	for _, f := range files {
		if fileTime(f).After(t) {
			rel, _ := filepath.Rel(run.Dir, f)
			return rel, true
		}
	}
	return "", false
}

// fileTime is a file's modification time; zero when it does not exist.
func fileTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

var nameDate = regexp.MustCompile(`(\d{8}-\d{6})$`)

// dateFromName reads the start time labrun run puts in a run's name.
func dateFromName(name string) time.Time {
	m := nameDate.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}
	}
	t, err := time.Parse("20060102-150405", m[1])
	if err != nil {
		return time.Time{}
	}
	return t
}

// fill sets what the site shows of a run from its summary, and the shapes
// from its scenario.yaml (summary.json names the shapes but not their axes).
func fill(r *Run, run results.RunDir, s *report.Summary) {
	r.Page = runPageDir(r.Name) + "/index.html"
	r.Scenario, r.Kernel, r.Kubernetes = s.Scenario, s.Env.Kernel, s.Env.Kubernetes
	if !s.Env.Started.IsZero() {
		r.Date = s.Env.Started.UTC()
	}
	r.Shapes = shapes(run, s)
	r.EmulatorProfile = emulatorProfile(s)
	r.Claims = make([]ClaimResult, 0, len(s.Claims))
	for _, c := range s.Claims {
		r.Claims = append(r.Claims, ClaimResult{N: c.N, Verdict: c.Verdict, Evidence: c.Evidence})
		switch c.Verdict {
		case analyze.Pass:
			r.ClaimVerdicts.Pass++
		case analyze.Fail:
			r.ClaimVerdicts.Fail++
		default:
			r.ClaimVerdicts.NotRun++
		}
	}
	r.Expectations = s.Expectations
	for _, e := range s.Expectations {
		switch e.Verdict {
		case expect.Met:
			r.ExpectationCounts.Met++
		case expect.Broken:
			r.ExpectationCounts.Broken++
		default:
			r.ExpectationCounts.NotEvaluated++
		}
	}
	for _, c := range s.Cells {
		switch c.State {
		case results.Complete:
			r.CellStates.Complete++
		case results.Incomplete:
			r.CellStates.Incomplete++
		default:
			r.CellStates.NotRun++
		}
		r.Cells = append(r.Cells, cellResult(c))
	}
}

func cellResult(c *analyze.Cell) CellResult {
	cr := CellResult{ID: c.ID, Backend: c.Backend, Mitigation: c.Mitigation, Load: c.Load, Chaos: c.Chaos,
		State: c.State, Reason: c.Reason}
	if st := c.Stats; st != nil && st.Count > 0 {
		cr.Lookups = st.Count
		cr.P50MS, cr.P99MS = ptr(st.P50MS), ptr(st.P99MS)
		cr.ShareAt5s = ptr(st.ClusteredShare)
		if c.IsGRPC() {
			cr.HitShare = ptr(c.HitShare())
		}
	}
	if cmp := c.Comparison; cmp != nil {
		cr.P99Ratio, cr.MeanRatio = ptr(cmp.P99Ratio), ptr(cmp.MeanRatio)
	}
	if d := c.Counters; d != nil {
		cr.InsertFailed = counter(d.Conntrack, analyze.InsertFailed)
		cr.ClashRes = counter(d.Conntrack, analyze.ClashResolved)
		if d.Emulator != nil {
			cr.EmulatorDropped = counter(d.Emulator, analyze.EmulatorDropped)
		}
	}
	return cr
}

// counter is m[k], or nil when this kernel (or agent) has no such counter:
// clashres appeared in Linux 5.10.
func counter(m map[string]uint64, k string) *uint64 {
	v, ok := m[k]
	if !ok {
		return nil
	}
	return &v
}

func ptr[T any](v T) *T { return &v }

func shapes(run results.RunDir, s *report.Summary) []Shape {
	if sc, err := run.ReadScenario(); err == nil {
		var out []Shape
		for _, cl := range sc.Clusters {
			network := cl.PodNetwork
			if cl.NodeImage == "published" {
				network = "kindnet (published node)"
			}
			out = append(out, Shape{Cluster: cl.Name, PodNetwork: network, KubeProxy: cl.KubeProxy, DNS: cl.DNS.Server})
		}
		return out
	}
	// Without the scenario, the cluster names alone.
	var out []Shape
	for _, c := range s.Cells {
		if !slices.ContainsFunc(out, func(sh Shape) bool { return sh.Cluster == c.Cluster }) {
			out = append(out, Shape{Cluster: c.Cluster})
		}
	}
	return out
}

// emulatorProfile is the profile env.json records, else the cells'.
func emulatorProfile(s *report.Summary) string {
	if p := s.Env.Extra["emulator_profile"]; p != "" {
		return p
	}
	var ps []string
	for _, c := range s.Cells {
		if c.EmulatorProfile != "" && !slices.Contains(ps, c.EmulatorProfile) {
			ps = append(ps, c.EmulatorProfile)
		}
	}
	return strings.Join(ps, ",")
}
