package workflow

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"

	"labrun.dev/labrun/pkg/images"
)

// workflowFiles are the repository's workflow files, relative to root.
func workflowFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, ext := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, ".github", "workflows", ext))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(root, f)
			files = append(files, rel)
		}
	}
	if len(files) == 0 {
		t.Fatal("no workflow in .github/workflows")
	}
	slices.Sort(files)
	return files
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestWorkflowActionlint lints every workflow with actionlint (as a library,
// github.com/rhysd/actionlint, pinned in go.mod) and fails on any finding.
// Its shellcheck integration runs the run: scripts through shellcheck when a
// shellcheck binary is on PATH (GitHub's runners have one; `apt-get install
// shellcheck` here) and is off when there is none, said in the log; its
// pyflakes integration is off (no workflow runs Python).
func TestWorkflowActionlint(t *testing.T) {
	root := repoRoot(t)
	files := workflowFiles(t, root)
	opts := &actionlint.LinterOptions{WorkingDir: root, Oneline: true}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
		t.Logf("shellcheck integration on: %s", sc)
	} else {
		t.Logf("shellcheck integration off: no shellcheck on PATH; the run: scripts are linted by actionlint's own checks only")
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	errs, err := l.LintFiles(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Errorf("actionlint: %d findings in %s:\n%s", len(errs), strings.Join(files, ", "), out.String())
	}
}

var (
	usesRE = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(.*)$`)
	shaRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	tagRE  = regexp.MustCompile(`#\s*v\d+(\.\d+)*\b`)
)

// TestWorkflowActionsPinned: every action is pinned by a full commit SHA and
// names its version in a comment (docs/nightly.md says how they were chosen).
func TestWorkflowActionsPinned(t *testing.T) {
	root := repoRoot(t)
	pins := map[string]string{} // action → sha@version: one pin per action across workflows
	for _, f := range workflowFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			m := usesRE.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(m[1], "./") {
				continue
			}
			action, ref, rest := m[1], m[2], m[3]
			if !shaRE.MatchString(ref) {
				t.Errorf("%s:%d: %s@%s is not pinned by a full commit SHA", f, i+1, action, ref)
				continue
			}
			tag := tagRE.FindString(rest)
			if tag == "" {
				t.Errorf("%s:%d: %s@%s has no `# vX.Y.Z` comment naming its version", f, i+1, action, ref)
				continue
			}
			repo := strings.Join(strings.SplitN(action, "/", 3)[:2], "/") // actions/cache/restore is actions/cache
			pin := ref + " " + strings.TrimSpace(strings.TrimPrefix(tag, "#"))
			if prev, ok := pins[repo]; ok && prev != pin {
				t.Errorf("%s:%d: %s pinned as %s here and %s elsewhere", f, i+1, repo, pin, prev)
			}
			pins[repo] = pin
		}
	}
}

// permissions is the part of a workflow the least-privilege check reads.
type permissions struct {
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Permissions map[string]string `yaml:"permissions"`
	} `yaml:"jobs"`
}

// writes lists, per workflow file and job, the permissions it may grant
// beyond read; everything else is read-only.
var writes = map[string]map[string][]string{
	".github/workflows/nightly.yml": {"publish": {"id-token", "pages"}},
}

// TestWorkflowPermissions: the token is read-only at the top of every
// workflow, and only the jobs listed above get more.
func TestWorkflowPermissions(t *testing.T) {
	root := repoRoot(t)
	for _, f := range workflowFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		var w permissions
		if err := yaml.Unmarshal(data, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if w.Permissions == nil {
			t.Errorf("%s: no top-level permissions: the token would get the repository's defaults", f)
		}
		for scope, level := range w.Permissions {
			if level != "read" && level != "none" {
				t.Errorf("%s: top-level permissions grant %s: %s; grant it on the job that needs it", f, scope, level)
			}
		}
		for job, j := range w.Jobs {
			var got []string
			for scope, level := range j.Permissions {
				if level == "write" {
					got = append(got, scope)
				}
			}
			slices.Sort(got)
			if want := writes[f][job]; !slices.Equal(got, want) {
				t.Errorf("%s: job %s may write %v, want %v", f, job, got, want)
			}
		}
	}
}

// TestNightlyDockerLabel: the nightly saves the lab's Docker images into the
// cache by the label the image pipeline puts on them.
func TestNightlyDockerLabel(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", "nightly.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"label=` + images.LabelKey + `"`; !strings.Contains(string(data), want) {
		t.Errorf("nightly.yml does not select the lab's images by %s (pkg/images.LabelKey)", want)
	}
}
