package workflow

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is a shell script and where it was written: a workflow step's run:,
// a Makefile recipe, a script file.
type Source struct {
	File   string // relative to the repository root
	Where  string // "job plan, step Plan", "recipe of nightly-local", "" for a script file
	Line   int    // the line of File on which the script's first line is
	Script string
}

// Invocation is a command found in a source.
type Invocation struct {
	Command
	Source Source
}

// Pos is where the invocation is written: FILE:LINE (where).
func (i Invocation) Pos() string {
	s := fmt.Sprintf("%s:%d", i.Source.File, i.Source.Line+i.Line-1)
	if i.Source.Where != "" {
		s += " (" + i.Source.Where + ")"
	}
	return s
}

// String is the command as found, for messages.
func (i Invocation) String() string {
	return strings.Join(append([]string{i.Name}, i.Args...), " ")
}

// WorkflowRuns returns the run: scripts of a workflow file (path relative to
// root), in job and step order.
func WorkflowRuns(root, path string) ([]Source, error) {
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	var out []Source
	jobs := mapValue(doc.Content[0], "jobs")
	if jobs == nil {
		return nil, nil
	}
	for i := 0; i+1 < len(jobs.Content); i += 2 {
		job := jobs.Content[i].Value
		steps := mapValue(jobs.Content[i+1], "steps")
		if steps == nil {
			continue
		}
		for n, step := range steps.Content {
			run := mapValue(step, "run")
			if run == nil {
				continue
			}
			name := fmt.Sprintf("step %d", n+1)
			if v := mapValue(step, "name"); v != nil {
				name = "step " + v.Value
			}
			line := run.Line
			if run.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				line++ // a block scalar starts on the line after its indicator
			}
			out = append(out, Source{File: path, Where: "job " + job + ", " + name, Line: line, Script: run.Value})
		}
	}
	return out, nil
}

// mapValue returns the value of key in a mapping node, nil when absent.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var (
	ruleRE   = regexp.MustCompile(`^([^\s:=#][^:=#]*?)\s*::?(\s|$)`)
	assignRE = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::)?=\s*(.*)$`)
	makeVar  = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`)
)

// Makefile is what the checks need from a Makefile: its rules' targets, its
// simple variables, and its recipes.
type Makefile struct {
	Path    string // relative to the repository root
	Targets map[string]bool
	Vars    map[string]string
	lines   []string
}

// ReadMakefile reads root/path.
func ReadMakefile(root, path string) (*Makefile, error) {
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &Makefile{Path: path, Targets: map[string]bool{}, Vars: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		m.lines = append(m.lines, line)
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if a := assignRE.FindStringSubmatch(line); a != nil {
			m.Vars[a[1]] = strings.TrimSpace(a[2])
			continue
		}
		if r := ruleRE.FindStringSubmatch(line); r != nil {
			for _, t := range strings.Fields(r[1]) {
				m.Targets[t] = true
			}
		}
	}
	return m, sc.Err()
}

// Recipe returns target's recipe as a shell script: the tab-indented lines
// after its rule, without make's @, - and + prefixes, with the Makefile's
// simple variables and $(MAKE) expanded and $$ turned into $.
func (m *Makefile) Recipe(target string) (Source, error) {
	for i, line := range m.lines {
		r := ruleRE.FindStringSubmatch(line)
		if r == nil || strings.HasPrefix(line, "\t") || !slices.Contains(strings.Fields(r[1]), target) {
			continue
		}
		var body []string
		for _, l := range m.lines[i+1:] {
			if !strings.HasPrefix(l, "\t") {
				break
			}
			body = append(body, m.expand(strings.TrimLeft(strings.TrimPrefix(l, "\t"), "@-+")))
		}
		if len(body) == 0 {
			return Source{}, fmt.Errorf("%s: %s has no recipe", m.Path, target)
		}
		return Source{File: m.Path, Where: "recipe of " + target, Line: i + 2, Script: strings.Join(body, "\n")}, nil
	}
	return Source{}, fmt.Errorf("%s: no rule for %s", m.Path, target)
}

// expand replaces $(VAR) of the Makefile's simple variables (others are left
// as the shell variable $VAR would read) and $$ by $.
func (m *Makefile) expand(s string) string {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	for range 4 { // variables that name variables
		s = makeVar.ReplaceAllStringFunc(s, func(v string) string {
			name := makeVar.FindStringSubmatch(v)[1]
			if name == "MAKE" {
				return "make"
			}
			if val, ok := m.Vars[name]; ok {
				return val
			}
			return dollar + name
		})
	}
	return strings.ReplaceAll(s, dollar, "$")
}

// ScriptFile reads a script of the repository as a source.
func ScriptFile(root, path string) (Source, error) {
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return Source{}, err
	}
	return Source{File: path, Line: 1, Script: string(data)}, nil
}

// Invocations returns every command of the sources and of the repository's
// scripts they run (bash hack/x.sh, hack/x.sh), followed transitively.
func Invocations(root string, srcs []Source) ([]Invocation, error) {
	var out []Invocation
	seen := map[string]bool{}
	for len(srcs) > 0 {
		src := srcs[0]
		srcs = srcs[1:]
		for _, c := range Commands(src.Script) {
			out = append(out, Invocation{Command: c, Source: src})
			script := ScriptOf(c)
			if script == "" || seen[script] {
				continue
			}
			seen[script] = true
			s, err := ScriptFile(root, script)
			if err != nil {
				return nil, fmt.Errorf("%s:%d runs %s: %w", src.File, src.Line+c.Line-1, script, err)
			}
			srcs = append(srcs, s)
		}
	}
	return out, nil
}

// ScriptOf returns the repository script a command runs ("" for none): the
// command itself when it is a relative path to a .sh file, or the first
// argument of bash/sh.
func ScriptOf(c Command) string {
	path := c.Name
	if c.Name == "bash" || c.Name == "sh" {
		path = ""
		for _, a := range c.Args {
			if !strings.HasPrefix(a, "-") {
				path = a
				break
			}
		}
	}
	if !strings.HasSuffix(path, ".sh") || filepath.IsAbs(path) || strings.ContainsAny(path, "$`") {
		return ""
	}
	return filepath.Clean(path)
}

// Root finds the repository root (the folder with go.mod) at or above dir.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// IsLabrun reports whether a command name runs labrun: labrun, bin/labrun,
// ./bin/labrun, or $LABRUN.
func IsLabrun(name string) bool {
	switch name {
	case "$LABRUN", "${LABRUN}":
		return true
	}
	return filepath.Base(name) == "labrun" && !strings.ContainsAny(name, "$`")
}
