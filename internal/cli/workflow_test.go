package cli

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"labrun.dev/labrun/internal/workflow"
)

// TestWorkflowCommands holds every `labrun …` and `make …` that the CI
// workflows' run: steps, the Makefile's nightly-local recipe and the scripts
// they run (followed transitively) would execute to this labrun and this
// Makefile: the command path exists and is runnable, every flag exists on it
// (a valued flag's value is skipped), and every make target has a rule. A
// renamed flag or command then fails here, not on GitHub at night. Problems
// are reported together, one line each, with FILE:LINE.
func TestWorkflowCommands(t *testing.T) {
	root, err := workflow.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	var srcs []workflow.Source
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.y*ml"))
	if len(files) == 0 {
		t.Fatal("no workflow in .github/workflows")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		s, err := workflow.WorkflowRuns(root, rel)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s...)
	}
	mk, err := workflow.ReadMakefile(root, "Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe, err := mk.Recipe("nightly-local")
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, recipe)
	invs, err := workflow.Invocations(root, srcs)
	if err != nil {
		t.Fatal(err)
	}

	labrun, makes := 0, 0
	for _, inv := range invs {
		var problem string
		switch {
		case workflow.IsLabrun(inv.Name):
			labrun++
			problem = checkLabrun(newRoot(Streams{}), inv.Args)
		case inv.Name == "make":
			makes++
			problem = checkMake(mk.Targets, inv.Args)
		default:
			continue
		}
		if problem != "" {
			t.Errorf("%s: %s: %s", inv.Pos(), inv, problem)
		}
	}
	t.Logf("checked %d labrun and %d make invocations in %d sources", labrun, makes, len(srcs))
	if labrun == 0 || makes == 0 {
		t.Errorf("found %d labrun and %d make invocations: the extractor lost them", labrun, makes)
	}
}

// checkLabrun walks args down the command tree from root as cobra would:
// words name subcommands while there are any, flags must exist on the command
// reached (its own, persistent or inherited), and a valued flag takes the next
// word unless written --flag=value. It returns "" when all is well.
func checkLabrun(root *cobra.Command, args []string) string {
	c := root
	var problems []string
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			f := lookupFlag(c, name, false)
			if f == nil {
				problems = append(problems, fmt.Sprintf("unknown flag --%s for %q", name, c.CommandPath()))
				continue
			}
			if !hasValue && takesValue(f) {
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1 && !strings.HasPrefix(a, "-$"):
			name := a[1:2]
			f := lookupFlag(c, name, true)
			if f == nil {
				problems = append(problems, fmt.Sprintf("unknown shorthand flag -%s for %q", name, c.CommandPath()))
				continue
			}
			if len(a) == 2 && takesValue(f) {
				i++
			}
		case !positional && c.HasSubCommands():
			sub := findSub(c, a)
			if sub == nil {
				var names []string
				for _, s := range c.Commands() {
					names = append(names, s.Name())
				}
				return fmt.Sprintf("unknown command %q for %q (it has %s)", a, c.CommandPath(), strings.Join(names, ", "))
			}
			c = sub
		default:
			positional = true
		}
	}
	if c.HasSubCommands() || !c.Runnable() {
		// usageArgs makes groups answer with their help: runnable, but a
		// workflow that names one has lost a word.
		problems = append(problems, fmt.Sprintf("%q is not a command that runs (a group: name a subcommand)", c.CommandPath()))
	}
	return strings.Join(problems, "; ")
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || slices.Contains(s.Aliases, name) {
			return s
		}
	}
	return nil
}

func lookupFlag(c *cobra.Command, name string, short bool) *pflag.Flag {
	if name == "help" || (short && name == "h") {
		return &pflag.Flag{Name: "help", Value: boolValue{}} // cobra adds it when the command runs
	}
	for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags(), c.InheritedFlags()} {
		if short {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
		} else if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// takesValue: a flag whose value is the next word (not a bool, no default
// when given bare).
func takesValue(f *pflag.Flag) bool {
	return f.NoOptDefVal == "" && f.Value.Type() != "bool"
}

type boolValue struct{}

func (boolValue) String() string   { return "false" }
func (boolValue) Set(string) error { return nil }
func (boolValue) Type() string     { return "bool" }

// checkMake checks make's targets: the words that are not options or
// VAR=value assignments. Options that take a value (-C DIR, -f FILE, -j N as
// -j is given here) skip it; -C or -f means another Makefile: not checked.
func checkMake(targets map[string]bool, args []string) string {
	var problems []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-C" || a == "-f" || a == "--directory" || a == "--file" || strings.HasPrefix(a, "--directory=") || strings.HasPrefix(a, "--file="):
			return "" // another Makefile
		case a == "-j" || a == "-l" || a == "-o" || a == "-W":
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
		case strings.HasPrefix(a, "-"):
		case strings.Contains(a, "="):
		default:
			if !targets[a] {
				problems = append(problems, fmt.Sprintf("no rule for target %q in the Makefile", a))
			}
		}
	}
	return strings.Join(problems, "; ")
}

// TestCheckLabrun checks the checker on the real command tree.
func TestCheckLabrun(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" or a part of the problem
	}{
		{[]string{"plan", "scenarios/baseline.yaml"}, ""},
		{[]string{"run", "f.yaml", "--results", "out", "--retain"}, ""},
		{[]string{"run", "f.yaml", "--results=out"}, ""},
		{[]string{"run", "--resume", "results/x"}, ""},
		{[]string{"export", "r", "--format", "junit", "-o", "DIR"}, ""},
		{[]string{"site", "a", "b", "-o", "site"}, ""},
		{[]string{"images", "pull", "--all"}, ""},
		{[]string{"images", "build", "--help"}, ""},
		{[]string{"hostcheck", "--json"}, ""},
		{[]string{"run", "f.yaml", "--shard-of", "1/2"}, `unknown flag --shard-of for "labrun run"`},
		{[]string{"export", "r", "-x", "junit"}, `unknown shorthand flag -x for "labrun export"`},
		{[]string{"merj", "a", "-o", "b"}, `unknown command "merj" for "labrun"`},
		{[]string{"images", "bild"}, `unknown command "bild" for "labrun images"`},
		{[]string{"images"}, `"labrun images" is not a command that runs`},
		{[]string{"plan", "f", "--jsn", "--shards", "2"}, "unknown flag --jsn"},
	}
	for _, tt := range tests {
		got := checkLabrun(newRoot(Streams{}), tt.args)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkLabrun(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestCheckMake(t *testing.T) {
	targets := map[string]bool{"deps": true, "images": true, "build": true}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deps"}, ""},
		{[]string{"-s", "images", "SCENARIO=x", "-j", "2", "build"}, ""},
		{[]string{"-C", "elsewhere", "anything"}, ""},
		{[]string{"image"}, `no rule for target "image"`},
	} {
		if got := checkMake(targets, tt.args); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkMake(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
