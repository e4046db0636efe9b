package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// goEnv is the environment of every Go build: reproducible, no workspace, no
// VCS stamping, the machine's own toolchain.
var goEnv = []string{"GOWORK=off", "GOFLAGS=-buildvcs=false -trimpath", "GOTOOLCHAIN=local"}

// goInstall builds packages pkgs, all at one module version, into the job's
// output folder with `go install pkg@version`.
func goInstall(ctx context.Context, j *job, cgo bool, tags string, ldflags string, pkgs ...string) error {
	args := []string{"go", "install"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	env := append([]string{"GOBIN=" + j.out, cgoEnv(cgo)}, goEnv...)
	return j.run(ctx, Cmd{Dir: j.out, Env: env, Args: append(args, pkgs...)})
}

func cgoEnv(on bool) string {
	if on {
		return "CGO_ENABLED=1"
	}
	return "CGO_ENABLED=0"
}

// goModule is a throwaway module that requires what it builds: needed where the
// upstream module has replace directives (Kubernetes, etcd), which
// `go install pkg@version` refuses.
type goModule struct {
	require []string          // "module version"
	replace []string          // "old => new version"
	files   map[string]string // extra source files (name → content)
	pkgs    []string          // packages to build
	ldflags string
	cgo     bool
}

func (m goModule) build(ctx context.Context, j *job) error {
	dir, err := os.MkdirTemp(filepath.Dir(j.out), "mod-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	b.WriteString("module labrun.dev/build/" + filepath.Base(j.step.Name) + "\n\ngo 1.24\n\n")
	for _, r := range m.require {
		b.WriteString("require " + r + "\n")
	}
	if len(m.replace) > 0 {
		b.WriteString("\nreplace (\n")
		for _, r := range m.replace {
			b.WriteString("\t" + r + "\n")
		}
		b.WriteString(")\n")
	}
	files := map[string]string{"go.mod": b.String()}
	for k, v := range m.files {
		files[k] = v
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	env := append([]string{cgoEnv(m.cgo)}, goEnv...)
	if err := j.run(ctx, Cmd{Dir: dir, Env: env, Args: []string{"go", "mod", "tidy"}}); err != nil {
		return err
	}
	args := []string{"go", "build", "-o", j.out + "/"}
	if m.ldflags != "" {
		args = append(args, "-ldflags", m.ldflags)
	}
	return j.run(ctx, Cmd{Dir: dir, Env: env, Args: append(args, m.pkgs...)})
}

// toolsFile makes the module import pkgs so that `go mod tidy` keeps them.
func toolsFile(pkgs []string) string {
	var b strings.Builder
	b.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, p := range pkgs {
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n")
	return b.String()
}

var stagingReplace = regexp.MustCompile(`(?m)^\s*(k8s\.io/[a-z0-9-]+)\s*=>\s*\./staging/`)

// kubernetesModule builds the Kubernetes binaries from k8s.io/kubernetes at a
// version, pointing each staging module at its published v0.Y.Z twin.
func kubernetesModule(ctx context.Context, j *job, k Kubernetes, bins []string) error {
	modFile, err := j.output(ctx, Cmd{Dir: j.out, Env: goEnv, Args: []string{"go", "mod", "download", "-json", "k8s.io/kubernetes@" + k.Version}})
	if err != nil {
		return err
	}
	gomod := regexp.MustCompile(`"GoMod":\s*"([^"]+)"`).FindSubmatch(modFile)
	if gomod == nil {
		return fmt.Errorf("go mod download k8s.io/kubernetes@%s: no go.mod in its answer", k.Version)
	}
	src, err := os.ReadFile(string(gomod[1]))
	if err != nil {
		return err
	}
	staging := "v0." + strings.TrimPrefix(k.Version, "v1.")
	var replace []string
	for _, m := range stagingReplace.FindAllSubmatch(src, -1) {
		replace = append(replace, fmt.Sprintf("%s => %s %s", m[1], m[1], staging))
	}
	if len(replace) == 0 {
		return fmt.Errorf("k8s.io/kubernetes@%s: found no staging replace directives in its go.mod", k.Version)
	}
	var pkgs []string
	for _, b := range bins {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+b)
	}
	return goModule{
		require: []string{"k8s.io/kubernetes " + k.Version},
		replace: replace,
		files:   map[string]string{"tools.go": toolsFile(pkgs)},
		pkgs:    pkgs,
		ldflags: kubeLdflags(k),
	}.build(ctx, j)
}

// kubeLdflags stamps the version kubeadm checks (it refuses v0.0.0 binaries).
func kubeLdflags(k Kubernetes) string {
	flags := []string{"-s", "-w"}
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", p+".gitVersion="+k.Version,
			"-X", p+".gitMajor=1",
			"-X", p+".gitMinor="+k.Minor(),
			"-X", p+".gitTreeState=clean",
			"-X", p+".gitCommit=0000000000000000000000000000000000000000",
			"-X", p+".buildDate=1970-01-01T00:00:00Z")
	}
	return strings.Join(flags, " ")
}

// etcdMain is the whole etcd server program: etcd's own main is in a module
// with replace directives, its server package is not.
const etcdMain = `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`
