package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The steps that build this repository's own programs run at every `images
// build`, and Go's build cache makes each cheap but not free: loading the
// packages and linking took 0.4 to 1.7 s a binary, 2.4 s of every warm run.
// A fingerprint of what a build reads lets such a step reuse its last output
// when nothing it reads changed, without running the compiler.

// goSources fingerprints what `go build ./cmd/pkg` reads in repo under env:
// the Go toolchain and the settings that change its output, go.mod, the C
// toolchain when cgo is on, every file of this module's packages in the
// binary (as `go list -deps` sees them under that env, build tags and cgo
// included), and the version of every other module's. The build's own
// flags are the step's inputs (Step.Inputs), part of its memo's key.
func goSources(ctx context.Context, repo, pkg string, env []string) (string, error) {
	env = append(append(os.Environ(), env...), goEnv...)
	h := sha256.New()
	goenv, err := command(ctx, repo, env, "go", "env", "-json", "GOVERSION", "GOROOT", "GOOS", "GOARCH", "GOAMD64",
		"GOEXPERIMENT", "GOFLAGS", "CGO_ENABLED", "CC", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_LDFLAGS", "GOMOD", "GOTOOLDIR")
	if err != nil {
		return "", err
	}
	h.Write(goenv)
	var tool struct{ CGO_ENABLED, CC, GOMOD, GOTOOLDIR string }
	if err := json.Unmarshal(goenv, &tool); err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	// The main module's go.mod (its go and godebug lines change what the
	// code does), and the compiler and linker themselves (a patched
	// toolchain can keep its GOVERSION).
	if err := hashFile(h, tool.GOMOD, "go.mod"); err != nil {
		return "", fmt.Errorf("fingerprint ./cmd/%s: %w", pkg, err)
	}
	for _, t := range []string{"compile", "link"} {
		if err := statFile(h, filepath.Join(tool.GOTOOLDIR, t)); err != nil {
			return "", fmt.Errorf("fingerprint ./cmd/%s: %w", pkg, err)
		}
	}
	if tool.CGO_ENABLED == "1" {
		if err := hashCC(ctx, h, repo, env, tool.CC); err != nil {
			return "", fmt.Errorf("fingerprint ./cmd/%s: %w", pkg, err)
		}
	}
	list, err := command(ctx, repo, env, "go", "list", "-deps",
		"-json=ImportPath,Dir,Standard,Module,GoFiles,CgoFiles,CFiles,CXXFiles,HFiles,SFiles,SysoFiles,EmbedFiles", "./cmd/"+pkg)
	if err != nil {
		return "", err
	}
	for dec := json.NewDecoder(bytes.NewReader(list)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("go list ./cmd/%s: %w", pkg, err)
		}
		if err := p.hash(h); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type listedPackage struct {
	ImportPath, Dir string
	Standard        bool // the toolchain's: GOVERSION and GOROOT say which
	Module          *struct {
		Path, Version string
		Main          bool
		Replace       *struct{ Path, Version string }
	}
	GoFiles, CgoFiles, CFiles, CXXFiles, HFiles, SFiles, SysoFiles, EmbedFiles []string
}

// hash writes what decides the package's part of the binary: its module's
// version when that names it (the module cache is immutable), else its files.
func (p listedPackage) hash(w io.Writer) error {
	if p.Standard {
		return nil
	}
	fmt.Fprintf(w, "package %s\n", p.ImportPath)
	if m := p.Module; m != nil && !m.Main {
		if r := m.Replace; r == nil {
			fmt.Fprintf(w, "module %s@%s\n", m.Path, m.Version)
			return nil
		} else if r.Version != "" {
			fmt.Fprintf(w, "module %s@%s => %s@%s\n", m.Path, m.Version, r.Path, r.Version)
			return nil
		}
	}
	for _, files := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.EmbedFiles} {
		for _, f := range files {
			if err := hashFile(w, filepath.Join(p.Dir, f), f); err != nil {
				return err
			}
		}
	}
	return nil
}

// javaSources fingerprints what javac reads of src: the source, and which
// javac (its resolved path and that file's size and time, which an upgrade
// of the JDK package changes).
func javaSources(repo, src string) (string, error) {
	h := sha256.New()
	javac, err := exec.LookPath("javac")
	if err != nil {
		return "", err
	}
	if err := statFile(h, javac); err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", src, err)
	}
	if err := hashFile(h, filepath.Join(repo, src), src); err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", src, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashCC writes what a cgo build takes from the C toolchain: the compiler's
// version, the C libraries it links (a static musl binary carries libc.a's
// resolver, the code the lab measures) and, where dpkg keeps one, the state
// of the system's packages (headers, libraries, musl's specs: any package
// change rebuilds the cgo binaries, about a second).
func hashCC(ctx context.Context, w io.Writer, repo string, env []string, cc string) error {
	argv := strings.Fields(cc)
	if len(argv) == 0 {
		return fmt.Errorf("go env: cgo is on but CC is empty")
	}
	run := func(args ...string) ([]byte, error) {
		return command(ctx, repo, env, argv[0], append(argv[1:], args...)...)
	}
	version, err := run("--version")
	if err != nil {
		return err
	}
	w.Write(version)
	fmt.Fprintf(w, "REALGCC=%s\n", os.Getenv("REALGCC"))
	for _, lib := range []string{"libc.a", "libc.so", "crt1.o"} {
		path, err := run("-print-file-name=" + lib)
		if err != nil {
			return err
		}
		// A name it cannot resolve comes back as it is: nothing to stat.
		if p := strings.TrimSpace(string(path)); filepath.IsAbs(p) {
			if err := statFile(w, p); err != nil {
				return err
			}
		}
	}
	if err := statFile(w, "/var/lib/dpkg/status"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// statFile writes a file's resolved path, size and time: enough to see a
// package upgrade replace it, without reading it.
func statFile(w io.Writer, path string) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "stat %s %d %s\n", resolved, info.Size(), info.ModTime().UTC())
	return nil
}

func hashFile(w io.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "file %s %d\n", name, info.Size())
	_, err = io.Copy(w, f)
	return err
}

// command runs a short command and returns its standard output.
func command(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
