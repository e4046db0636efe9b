package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// recipeVersion is part of every key: bump it when a recipe changes in a way
// its inputs do not show, and everything rebuilds.
const recipeVersion = "1"

// A Step makes one artifact: a folder of files in the cache, or a Docker image.
// Its key hashes its name, its inputs and the keys of its dependencies, so a
// changed pinned version rebuilds exactly the steps that depend on it.
type Step struct {
	Name   string   // unique, e.g. "kubernetes", "image/kube-proxy", "node"
	From   string   // what it is built from, for people (images list)
	Inputs []string // everything else that decides the output
	Deps   []*Step
	// Image is the Docker image (repo:tag) the step produces, if any; otherwise
	// its output is the folder Dir().
	Image string
	// Always marks steps that are cheap and build from this repository's own
	// source: their output's hash is their key, and they run every time
	// unless sources says what they read is as at a build the cache holds.
	Always bool
	build  func(ctx context.Context, j *job) error
	// sources fingerprints everything an Always step's build reads.
	sources func(ctx context.Context) (string, error)

	key string // set by resolve
	dir string // output folder (file steps), set by resolve/run
}

// Key is the step's content address (after the plan is resolved).
func (s *Step) Key() string { return s.key }

// Dir is the folder holding the step's output files.
func (s *Step) Dir() string { return s.dir }

// File returns the path of one output file.
func (s *Step) File(name string) string { return filepath.Join(s.dir, name) }

// Runner executes steps in dependency order, reusing what the cache has.
type Runner struct {
	Cache    string    // root of the artifact cache
	Progress io.Writer // one line per step with its elapsed time
	Docker   *Docker
	Parallel int // steps run at once (default 1)

	mu            sync.Mutex
	reused, built []string
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// order returns the steps reachable from roots, dependencies first.
func order(roots []*Step) []*Step {
	var out []*Step
	seen := map[*Step]bool{}
	var visit func(*Step)
	visit = func(s *Step) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, d := range s.Deps {
			visit(d)
		}
		out = append(out, s)
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// Run builds roots and everything they need. Independent steps run side by
// side (Parallel at a time; a debootstrap waits on the network while a Go
// build uses the CPU). A free slot goes to the ready step that comes first in
// plan order, so a build proceeds as the plan lists it: a root file system is
// extended as soon as its base is made, not after every Go build ready
// meanwhile. The first failure (or an interrupt) starts nothing more and
// returns once the running steps have stopped.
func (r *Runner) Run(ctx context.Context, roots ...*Step) error {
	steps := order(roots)
	start := time.Now()
	parallel := max(r.Parallel, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i   int
		err error
	}
	results := make(chan result)
	done := make([]bool, len(steps))
	started := make([]bool, len(steps))
	index := make(map[*Step]int, len(steps))
	for i, s := range steps {
		index[s] = i
	}
	ready := func(i int) bool {
		for _, d := range steps[i].Deps {
			if !done[index[d]] {
				return false
			}
		}
		return true
	}
	var firstErr error
	running, finished := 0, 0
	for {
		for i := 0; i < len(steps) && running < parallel && firstErr == nil && ctx.Err() == nil; i++ {
			if started[i] || !ready(i) {
				continue
			}
			started[i] = true
			running++
			go func() {
				err := r.runStep(ctx, steps[i], i+1, len(steps))
				if err != nil {
					err = fmt.Errorf("build %s: %w", steps[i].Name, err)
				}
				results <- result{i, err}
			}()
		}
		if running == 0 {
			break
		}
		res := <-results
		running--
		finished++
		if res.err != nil && firstErr == nil {
			firstErr = res.err
			cancel()
		}
		done[res.i] = res.err == nil
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if finished < len(steps) {
		return fmt.Errorf("images: %d of %d steps could not start (a dependency cycle?)", len(steps)-finished, len(steps))
	}
	r.logf("images: %d steps in %s: %d built, %d reused", len(steps), since(start), len(r.built), len(r.reused))
	return nil
}

func (r *Runner) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format+"\n", args...)
	}
}

func (r *Runner) record(list *[]string, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*list = append(*list, name)
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// keyOf computes s.key from its inputs and its dependencies' keys.
func (r *Runner) keyOf(s *Step) {
	deps := make([]string, 0, len(s.Deps))
	for _, d := range s.Deps {
		deps = append(deps, d.Name+"="+d.key)
	}
	sort.Strings(deps)
	inputs := append([]string{recipeVersion, s.Name, s.Image}, s.Inputs...)
	s.key = hashOf(append(inputs, deps...)...)
	if s.Image == "" {
		s.dir = filepath.Join(r.dirOf(s), s.key[:16])
	}
}

func (r *Runner) dirOf(s *Step) string { return filepath.Join(r.Cache, "artifacts", s.Name) }

// present says whether the cache (or Docker) already holds s's output.
func (r *Runner) present(ctx context.Context, s *Step) bool {
	if s.Image != "" {
		have, _ := r.Docker.ImageLabel(ctx, s.Image, LabelKey)
		return have == s.key
	}
	if s.Always {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir, ".complete"))
	return err == nil
}

// latest points an Always step at its newest output in the cache, without
// building it (for listing); it returns false if there is none.
func (r *Runner) latest(s *Step) bool {
	entries, _ := os.ReadDir(r.dirOf(s))
	var newest os.FileInfo
	for _, e := range entries {
		info, err := os.Stat(filepath.Join(r.dirOf(s), e.Name(), ".complete"))
		if err == nil && (newest == nil || info.ModTime().After(newest.ModTime())) {
			newest = info
			s.dir = filepath.Join(r.dirOf(s), e.Name())
		}
	}
	if newest == nil {
		return false
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, ".complete"))
	s.key = strings.TrimSpace(string(b))
	return true
}

func (r *Runner) runStep(ctx context.Context, s *Step, n, total int) error {
	r.keyOf(s)
	inputKey := s.key
	tag := fmt.Sprintf("[%d/%d] %s", n, total, s.Name)
	if r.present(ctx, s) {
		r.record(&r.reused, s.Name)
		what := s.key[:12]
		if s.Image != "" {
			what = s.Image + " " + what
		}
		r.logf("%s: reused %s", tag, what)
		return nil
	}

	var sources string // what the build reads, with the step's own inputs
	if s.Always && s.sources != nil {
		fp, err := s.sources(ctx)
		if err == nil {
			sources = hashOf(s.key, fp)
		}
		if err != nil {
			// Only a shortcut: the build itself says what is wrong, if anything.
			r.logf("%s: cannot tell whether its sources changed (%v)", tag, err)
		} else if r.builtFrom(s, sources) {
			r.record(&r.reused, s.Name)
			r.logf("%s: reused %s (sources unchanged)", tag, s.key[:12])
			return nil
		}
	}

	start := time.Now()
	r.logf("%s: building (%s)", tag, s.From)
	stop := r.ticker(ctx, tag, start)
	defer stop()

	// File outputs are built into a temporary folder and renamed into place,
	// so an interrupted build never leaves a folder that looks complete.
	tmp, err := os.MkdirTemp(filepath.Join(r.Cache, "tmp"), s.Name[strings.LastIndex(s.Name, "/")+1:]+"-")
	if err != nil {
		return fmt.Errorf("make build folder: %w", err)
	}
	defer func() {
		if err := unmountUnder(tmp); err != nil {
			r.logf("%s: %v", tag, err)
		}
		os.RemoveAll(tmp)
	}()
	j, err := r.newJob(s, tmp)
	if err != nil {
		return err
	}
	err = s.build(ctx, j)
	j.close()
	if err != nil {
		return err
	}
	if s.Image == "" {
		if s.Always {
			sum, err := hashTree(tmp)
			if err != nil {
				return err
			}
			s.key = hashOf(s.key, sum)
		}
		s.dir = filepath.Join(r.dirOf(s), s.key[:16])
		if _, err := os.Stat(filepath.Join(s.dir, ".complete")); err != nil {
			if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(s.key+"\n"), 0o644); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
				return err
			}
			os.RemoveAll(s.dir)
			if err := os.Rename(tmp, s.dir); err != nil {
				return fmt.Errorf("store %s: %w", s.Name, err)
			}
		}
	}
	if sources != "" {
		// Not if a file changed during the build: which version it read is
		// unknown.
		if after, err := s.sources(ctx); err == nil && hashOf(inputKey, after) == sources {
			if err := r.rememberSources(s, sources); err != nil {
				// Only a shortcut: the next run builds again.
				r.logf("%s: %v", tag, err)
			}
		}
	}
	r.record(&r.built, s.Name)
	r.logf("%s: built in %s", tag, since(start))
	return nil
}

// sourcesMemo is where an Always step's build from sources (a hash of the
// step's inputs and of what its build reads) recorded the key of its output.
func (r *Runner) sourcesMemo(s *Step, sources string) string {
	return filepath.Join(r.dirOf(s), "sources", sources[:32])
}

// builtFrom points s at the output of its build from sources, if the cache
// holds it complete.
func (r *Runner) builtFrom(s *Step, sources string) bool {
	b, err := os.ReadFile(r.sourcesMemo(s, sources))
	key := strings.TrimSpace(string(b))
	if err != nil || len(key) < 16 {
		return false
	}
	dir := filepath.Join(r.dirOf(s), key[:16])
	if done, err := os.ReadFile(filepath.Join(dir, ".complete")); err != nil || strings.TrimSpace(string(done)) != key {
		return false
	}
	s.key, s.dir = key, dir
	return true
}

// rememberSources records that s's output was built from sources, once the
// output is in place (written then renamed, so a memo is never half there).
func (r *Runner) rememberSources(s *Step, sources string) error {
	memo := r.sourcesMemo(s, sources)
	if err := os.MkdirAll(filepath.Dir(memo), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(memo), ".memo-")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(s.key + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), memo)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ticker prints a line every 30 s while a step runs, so a long build shows life.
func (r *Runner) ticker(ctx context.Context, tag string, start time.Time) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				r.logf("%s: still building (%s)", tag, since(start))
			}
		}
	}()
	return func() { close(done) }
}

// hashTree hashes every regular file's path and content under dir.
func hashTree(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\n", rel)
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), err
}
