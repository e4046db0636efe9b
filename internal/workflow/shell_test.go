package workflow

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func cmd(line int, name string, args ...string) Command {
	if args == nil {
		args = []string{}
	}
	return Command{Name: name, Args: args, Line: line}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []Command
	}{
		{"plain", "bin/labrun plan scenarios/nightly.yaml --json",
			[]Command{cmd(1, "bin/labrun", "plan", "scenarios/nightly.yaml", "--json")}},
		{"quoted args", `bin/labrun run "scenarios/$SCENARIO.yaml" --shard '1/2' --results "a b"`,
			[]Command{cmd(1, "bin/labrun", "run", "scenarios/$SCENARIO.yaml", "--shard", "1/2", "--results", "a b")}},
		{"escaped quotes in double quotes", `echo "say \"hi\" \$HOME" x`,
			[]Command{cmd(1, "echo", `say "hi" $HOME`, "x")}},
		{"line continuations", "./bin/labrun run x.yaml \\\n  --shard \"$SHARD\" \\\n  --results out\nmake build",
			[]Command{cmd(1, "./bin/labrun", "run", "x.yaml", "--shard", "$SHARD", "--results", "out"), cmd(4, "make", "build")}},
		{"vars kept as written", `bin/labrun merge ${RUNS[@]} -o "${OUT}/$RUN" $1 $#`,
			[]Command{cmd(1, "bin/labrun", "merge", "${RUNS[@]}", "-o", "${OUT}/$RUN", "$1", "$#")}},
		{"|| and &&", `bin/labrun run a.yaml || code=$?; make deps && make images`,
			[]Command{cmd(1, "bin/labrun", "run", "a.yaml"), cmd(1, "make", "deps"), cmd(1, "make", "images")}},
		{"pipes and redirections", `bin/labrun run a.yaml 2>&1 >out.log | tee -a "$LOG" >/dev/null`,
			[]Command{cmd(1, "bin/labrun", "run", "a.yaml"), cmd(1, "tee", "-a", "$LOG")}},
		{"&> and here-string", `bin/labrun hostcheck &> "$LOGS/host.txt"; jq . <<< "$x"`,
			[]Command{cmd(1, "bin/labrun", "hostcheck"), cmd(1, "jq", ".")}},
		{"env-prefixed", `LABRUN_CACHE=/c GOFLAGS="-a -b" bin/labrun images build`,
			[]Command{cmd(1, "bin/labrun", "images", "build")}},
		{"sudo and env", `sudo -E env "PATH=$PATH" make images`,
			[]Command{cmd(1, "make", "images")}},
		{"sudo with a valued option", `sudo -u root --preserve-env=PATH ./bin/labrun hostcheck --json`,
			[]Command{cmd(1, "./bin/labrun", "hostcheck", "--json")}},
		{"timeout and exec", `timeout -s INT 10m exec labrun run a.yaml`,
			[]Command{cmd(1, "labrun", "run", "a.yaml")}},
		{"command substitution", `index=$(bin/labrun run "$(ls scenarios/*.yaml | head -1)" --shard 1/2)`,
			[]Command{cmd(1, "ls", "scenarios/*.yaml"), cmd(1, "head", "-1"), cmd(1, "bin/labrun", "run", "$(ls scenarios/*.yaml | head -1)", "--shard", "1/2")}},
		{"command substitution in double quotes over lines", "echo \"x=$(\n  bin/labrun plan f --json\n)\"",
			[]Command{cmd(2, "bin/labrun", "plan", "f", "--json"), cmd(1, "echo", "x=$(\n  bin/labrun plan f --json\n)")}},
		{"backticks", "v=`make -s print`",
			[]Command{cmd(1, "make", "-s", "print")}},
		{"arithmetic is no command", `n=$((N + 1)); echo "$n"`,
			[]Command{cmd(1, "echo", "$n")}},
		{"comments", "# make nothing\nmake build # and not # this\necho a#b",
			[]Command{cmd(2, "make", "build"), cmd(3, "echo", "a#b")}},
		{"if, for, while", "if bin/labrun report r; then make a; fi\nfor s in 1 2; do make \"b$s\"; done\nwhile ! make c; do :; done",
			[]Command{cmd(1, "bin/labrun", "report", "r"), cmd(1, "make", "a"), cmd(2, "make", "b$s"), cmd(3, "make", "c"), cmd(3, ":")}},
		{"case", "case $code in\n  0|3) make ok ;;\n  *) exit \"$code\" ;;\nesac",
			[]Command{cmd(2, "0"), cmd(2, "3"), cmd(2, "make", "ok"), cmd(3, "*"), cmd(3, "exit", "$code")}},
		{"subshell and group", "(cd x && make y)\n{ bin/labrun version; }",
			[]Command{cmd(1, "cd", "x"), cmd(1, "make", "y"), cmd(2, "bin/labrun", "version")}},
		{"here-document bodies are not commands", "cat >f <<'EOF'\nmake not-a-target\nEOF\ncat <<-END\n\tbin/labrun nope\n\tEND\nmake after",
			[]Command{cmd(1, "cat"), cmd(4, "cat"), cmd(7, "make", "after")}},
		{"GitHub expressions", `bin/labrun run "${{ inputs.scenario }}" --shard ${{ matrix.shard }}`,
			[]Command{cmd(1, "bin/labrun", "run", "${{ inputs.scenario }}", "--shard", "${{ matrix.shard }}")}},
		{"single quotes keep everything", `jq -r '.shards[] | select(.cells | length > 0) | .shard' plan.json`,
			[]Command{cmd(1, "jq", "-r", ".shards[] | select(.cells | length > 0) | .shard", "plan.json")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Commands(tt.script)
			for i := range got {
				if got[i].Args == nil {
					got[i].Args = []string{}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Commands(%q)\n got %+v\nwant %+v", tt.script, got, tt.want)
			}
		})
	}
}

func TestIsLabrun(t *testing.T) {
	for name, want := range map[string]bool{
		"labrun": true, "bin/labrun": true, "./bin/labrun": true, "$LABRUN": true, "${LABRUN}": true, "/usr/local/bin/labrun": true,
		"labrun-runc": false, "bin/labrunx": false, "$X/labrun": false, "make": false,
	} {
		if got := IsLabrun(name); got != want {
			t.Errorf("IsLabrun(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMakefile(t *testing.T) {
	dir := t.TempDir()
	mk := "# header\nLABRUN := bin/labrun\nSHARDS ?= 2\nexport GOFLAGS := -x\n.PHONY: a b\n\na b: c\n\t@$(LABRUN) run x --shards $(SHARDS) $(UNSET)\n\t-$(MAKE) b\n\techo $$HOME \\\n\t  more\nc:\n\ttrue\n"
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMakefile(dir, "Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"a", "b", "c", ".PHONY"} {
		if !m.Targets[target] {
			t.Errorf("target %s not found: %v", target, m.Targets)
		}
	}
	if m.Targets["LABRUN"] || m.Targets["SHARDS"] || m.Targets["export"] {
		t.Errorf("variables taken for targets: %v", m.Targets)
	}
	src, err := m.Recipe("b")
	if err != nil {
		t.Fatal(err)
	}
	if src.Line != 8 {
		t.Errorf("recipe line %d, want 8", src.Line)
	}
	want := []Command{cmd(1, "bin/labrun", "run", "x", "--shards", "2", "$UNSET"), cmd(2, "make", "b"), cmd(3, "echo", "$HOME", "more")}
	if got := Commands(src.Script); !reflect.DeepEqual(got, want) {
		t.Errorf("recipe commands\n got %+v\nwant %+v", got, want)
	}
	if _, err := m.Recipe("nope"); err == nil || !strings.Contains(err.Error(), "no rule for nope") {
		t.Errorf("Recipe(nope): %v", err)
	}
}

func TestWorkflowRunsAndScripts(t *testing.T) {
	dir := t.TempDir()
	wf := `on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Build
        run: make build
      - run: |
          bash hack/a.sh --flag
          bin/labrun version
`
	files := map[string]string{
		".github/workflows/w.yml": wf,
		"hack/a.sh":               "#!/bin/bash\nhack/b.sh\nmake from-a\n",
		"hack/b.sh":               "#!/bin/bash\nbin/labrun from-b\nbash hack/a.sh\n",
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := WorkflowRuns(dir, ".github/workflows/w.yml")
	if err != nil {
		t.Fatal(err)
	}
	invs, err := Invocations(dir, srcs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range invs {
		got = append(got, i.Pos()+" "+i.String())
	}
	want := []string{
		".github/workflows/w.yml:8 (job one, step Build) make build",
		".github/workflows/w.yml:10 (job one, step 3) bash hack/a.sh --flag",
		".github/workflows/w.yml:11 (job one, step 3) bin/labrun version",
		"hack/a.sh:2 hack/b.sh",
		"hack/a.sh:3 make from-a",
		"hack/b.sh:2 bin/labrun from-b",
		"hack/b.sh:3 bash hack/a.sh",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("invocations\n got %q\nwant %q", got, want)
	}
	if _, err := Invocations(dir, []Source{{File: "x", Line: 1, Script: "hack/missing.sh"}}); err == nil {
		t.Error("a missing script: no error")
	}
}
