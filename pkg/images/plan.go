package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Image names the lab uses.
const (
	NodeRepo   = "labrun/node"
	labnetRepo = "docker.io/labrun/labnet"
	labdnsRepo = "docker.io/labrun/labdns"
	// KubeRouterRepo and DnsmasqRepo are the addon images (Plan.Addons).
	KubeRouterRepo = "docker.io/labrun/kube-router"
	DnsmasqRepo    = "docker.io/labrun/dnsmasq"
	refFileName    = "ref"       // an image step's output: the image's repo:tag
	tarFileName    = "image.tar" // an image step's output: docker-loadable tarball
)

// Plan is every step that makes the images of one Kubernetes version.
type Plan struct {
	Kube Kubernetes
	// Node is the kind node image, with every image Kubernetes needs preloaded.
	Node *Step
	// LabNode is the image a lab cluster's nodes run: Node with the Lab images
	// preloaded too, a layer of its own (they change with this repository's
	// code; the node beneath does not).
	LabNode *Step
	// Lab are the lab's own images (the lab upstream DNS server, the probes,
	// the race emulator's agent): preloaded in LabNode, and what an existing
	// cluster is given.
	Lab []*Step
	// Components are the images preloaded into the node (kube-*, etcd, ...).
	Components []*Step
	// Addons are images only some cluster shapes need (a pod network, a DNS
	// cache): built with the others, loaded into a cluster that uses them.
	Addons []*Step
}

// NodeImage is the node image's name for a Kubernetes version.
func NodeImage(k Kubernetes) string { return NodeRepo + ":" + k.Version }

// LabNodeImage is the name of the node image with the lab's images
// preloaded, the one lab clusters run.
func LabNodeImage(k Kubernetes) string { return NodeImage(k) + "-lab" }

// Roots are the steps a build asks for: the lab node image and the addon
// images named (all of them when addons is nil).
func (p *Plan) Roots(addons []string) ([]*Step, error) {
	roots := []*Step{p.LabNode}
	if addons == nil {
		return append(roots, p.Addons...), nil
	}
	for _, name := range addons {
		s := p.AddonImage(name)
		if s == nil {
			return nil, fmt.Errorf("addon image %q is not in the image plan; valid: %s", name, strings.Join(p.AddonNames(), ", "))
		}
		roots = append(roots, s)
	}
	return roots, nil
}

// LabRoots are the steps a build for a cluster of the published node asks
// for: the lab's own images and the addon images named (all when nil), not
// the node image nor anything only it needs (Kubernetes, containerd, ...).
func (p *Plan) LabRoots(addons []string) ([]*Step, error) {
	roots, err := p.Roots(addons)
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(p.Lab), roots[1:]...), nil // roots[0] is the lab node
}

// AddonNames are the names of the addon images, as AddonImage takes them.
func (p *Plan) AddonNames() []string {
	var names []string
	for _, s := range p.Addons {
		names = append(names, strings.TrimPrefix(s.Name, "image/"))
	}
	return names
}

// ImageRef returns the repo:tag an image step produced (after it ran).
func ImageRef(s *Step) (string, error) {
	if s.Image != "" {
		return s.Image, nil
	}
	b, err := os.ReadFile(s.File(refFileName))
	if err != nil {
		return "", fmt.Errorf("image %s has not been built: %w", s.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ImageTar is the docker-loadable tarball of an image step.
func ImageTar(s *Step) string { return s.File(tarFileName) }

// NewPlan lays out the steps for Kubernetes version k; repo is the labrun
// source tree (our own daemons are built from it).
func NewPlan(v Versions, k Kubernetes, repo string) *Plan {
	kubeBins := []string{"kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
	kube := &Step{
		Name:   "go/kubernetes-" + k.Version,
		From:   "k8s.io/kubernetes " + k.Version + " (" + strings.Join(kubeBins, ", ") + ")",
		Inputs: append([]string{k.Version, kubeLdflags(k)}, kubeBins...),
		build:  func(ctx context.Context, j *job) error { return kubernetesModule(ctx, j, k, kubeBins) },
	}
	etcd := &Step{
		Name:   "go/etcd-" + k.Etcd,
		From:   "go.etcd.io/etcd/server/v3 " + k.Etcd,
		Inputs: []string{k.Etcd, etcdMain},
		build: func(ctx context.Context, j *job) error {
			return goModule{
				require: []string{"go.etcd.io/etcd/server/v3 " + k.Etcd},
				files:   map[string]string{"main.go": etcdMain},
				pkgs:    []string{"."},
				ldflags: "-s -w",
			}.build(ctx, j)
		},
	}
	// goInstall names the binary after the module's main package folder; etcd's
	// wrapper module is named after its step, so rename it to etcd.
	etcdBuild := etcd.build
	etcd.build = func(ctx context.Context, j *job) error {
		if err := etcdBuild(ctx, j); err != nil {
			return err
		}
		return os.Rename(j.File(filepath.Base(j.step.Name)), j.File("etcd"))
	}
	coredns := goInstallStep("coredns", "github.com/coredns/coredns", k.CoreDNS, false, "", "")
	crictl := goInstallStep("crictl", "sigs.k8s.io/cri-tools", k.Crictl, false, "", "", "cmd/crictl")
	cni := goInstallStep("cni-plugins", "github.com/containernetworking/plugins", v.CNIPlugins, false, "", "-s -w",
		"plugins/main/ptp", "plugins/main/bridge", "plugins/main/loopback", "plugins/ipam/host-local", "plugins/meta/portmap")
	containerd := goInstallStep("containerd", "github.com/containerd/containerd/v2", v.Containerd, false,
		"no_aufs no_zfs no_btrfs no_devmapper", "-s -w", "cmd/containerd", "cmd/ctr", "cmd/containerd-shim-runc-v2")
	// runc needs cgo and seccomp, or pods fail with "seccomp not supported".
	runc := goInstallStep("runc", "github.com/opencontainers/runc", v.Runc, true, "seccomp", "-s -w", "")
	pause := pauseStep(k)
	debian := baseStep(v)
	nodeRootfs := importStep(debianStep(debian, "node", nodePackages), "labrun/debian:"+v.Debian.Suite+"-node")
	tools := debianStep(debian, "tools", toolsPackages)
	labnet := ownBinaryStep(repo, "labnet", "labnet", nil, "-s -w")
	labdns := ownBinaryStep(repo, "labdns", "labdns", nil, "-s -w")
	// The probes call the real C libraries (pkg/probe): glibc dynamically
	// linked on a Debian base that also has gRPC C-core (python3-grpcio);
	// musl statically linked with musl-gcc, on an empty base.
	probeRootfs := debianStep(debian, "probe", probePackages)
	probeGlibc := ownBinaryStep(repo, "probe-glibc", "probe", []string{"CGO_ENABLED=1", "CC=gcc"}, "-s -w")
	probeMusl := ownBinaryStep(repo, "probe-musl", "probe", []string{"CGO_ENABLED=1", "CC=musl-gcc"},
		"-s -w -linkmode external -extldflags -static")
	// The jvm back end's worker, compiled by javac from Debian's
	// openjdk-17-jdk-headless, which hack/deps.sh installs on the build host
	// (hack/apt-packages.txt); the image carries only the JRE.
	javac := []string{"javac", "--release", "17", "-d", "OUT", "pkg/probe/jvm/LabProbe.java"}
	jvmClass := &Step{
		Name:   "labrun/jvm-probe",
		From:   "pkg/probe/jvm/LabProbe.java (this repository, javac --release 17 of openjdk-17-jdk-headless)",
		Inputs: javac,
		Always: true,
		build: func(ctx context.Context, j *job) error {
			if _, err := exec.LookPath("javac"); err != nil {
				return fmt.Errorf("the jvm probe's class needs javac (Debian's openjdk-17-jdk-headless; make deps installs it): %w", err)
			}
			args := slices.Clone(javac)
			args[4] = j.File("")
			return j.run(ctx, Cmd{Dir: repo, Args: args})
		},
		sources: func(context.Context) (string, error) { return javaSources(repo, "pkg/probe/jvm/LabProbe.java") },
	}
	labagent := ownBinaryStep(repo, "labagent", "labagent", nil, "-s -w")

	bin := func(s *Step, name string) fileFrom { return fileFrom{s, name} }
	components := []*Step{
		componentImage("kube-apiserver", "registry.k8s.io/kube-apiserver:"+k.Version, nil, bin(kube, "kube-apiserver")),
		componentImage("kube-controller-manager", "registry.k8s.io/kube-controller-manager:"+k.Version, nil, bin(kube, "kube-controller-manager")),
		componentImage("kube-scheduler", "registry.k8s.io/kube-scheduler:"+k.Version, nil, bin(kube, "kube-scheduler")),
		// kube-proxy programs iptables/nftables: it needs their tools.
		componentImage("kube-proxy", "registry.k8s.io/kube-proxy:"+k.Version, tools, bin(kube, "kube-proxy")),
		componentImage("etcd", "registry.k8s.io/etcd:"+k.EtcdTag(), nil, bin(etcd, "etcd")),
		componentImage("coredns", "registry.k8s.io/coredns/coredns:"+k.CoreDNS, nil, bin(coredns, "coredns")),
		componentImage("pause", "registry.k8s.io/pause:"+k.Pause, nil, bin(pause, "pause")),
		componentImage("labnet", labnetRepo, tools, bin(labnet, "labnet")),
	}
	node := nodeStep(v, k, nodeRootfs, kube, containerd, runc, crictl, cni, components)
	lab := []*Step{
		componentImage("labdns", labdnsRepo, nil, bin(labdns, "labdns")),
		probeGlibcImage(probeRootfs, bin(probeGlibc, "probe-glibc"), bin(jvmClass, "LabProbe.class")),
		componentImage("probe-musl", "docker.io/labrun/probe-musl", nil, bin(probeMusl, "probe-musl")),
		componentImage("labagent", "docker.io/labrun/labagent", tools, bin(labagent, "labagent")),
	}
	kubeRouter := goInstallStep("kube-router", "github.com/cloudnativelabs/kube-router/v2", v.KubeRouter, false, "", "-s -w", "cmd/kube-router")
	addons := []*Step{
		// kube-router programs routes, iptables and ipsets: the tools base.
		componentImage("kube-router", KubeRouterRepo+":"+v.KubeRouter, tools, bin(kubeRouter, "kube-router")),
		// Debian's dnsmasq, the cache kube-dns itself ships (dns: dnsmasq-coredns).
		rootfsImage("dnsmasq", DnsmasqRepo, debianStep(debian, "dnsmasq", dnsmasqPackages), "/usr/sbin/dnsmasq"),
	}
	return &Plan{Kube: k, Node: node, LabNode: labNodeStep(k, node, lab), Lab: lab, Components: components, Addons: addons}
}

// goInstallStep builds packages of module mod at version with `go install`.
func goInstallStep(name, mod, version string, cgo bool, tags, ldflags string, pkgs ...string) *Step {
	if len(pkgs) == 0 {
		pkgs = []string{""}
	}
	var full []string
	for _, p := range pkgs {
		full = append(full, strings.TrimSuffix(mod+"/"+p, "/")+"@"+version)
	}
	return &Step{
		Name:   "go/" + name + "-" + version,
		From:   mod + " " + version,
		Inputs: append([]string{version, tags, ldflags, fmt.Sprint(cgo)}, full...),
		build: func(ctx context.Context, j *job) error {
			return goInstall(ctx, j, cgo, tags, ldflags, full...)
		},
	}
}

// pauseStep compiles Kubernetes's pause.c statically, as its image does.
func pauseStep(k Kubernetes) *Step {
	return &Step{
		Name:   "c/pause-" + k.Pause,
		From:   "k8s.io/kubernetes " + k.Version + " build/pause/linux/pause.c (gcc -static)",
		Inputs: []string{k.Version, k.Pause},
		build: func(ctx context.Context, j *job) error {
			dir, err := j.output(ctx, Cmd{Env: goEnv, Args: []string{"go", "mod", "download", "-json", "k8s.io/kubernetes@" + k.Version}})
			if err != nil {
				return err
			}
			src := jsonField(dir, "Dir") + "/build/pause/linux/pause.c"
			return j.run(ctx, Cmd{Args: []string{"gcc", "-Os", "-Wall", "-Werror", "-static",
				"-DVERSION=v" + k.Pause + "-labrun", "-o", j.File("pause"), src}})
		},
	}
}

// ownBinaryStep builds one of this repository's commands (./cmd/pkg) as
// binary name. It runs unless what it reads is as at its last build (then its
// last output is reused); its key is the hash of what it produced.
func ownBinaryStep(repo, name, pkg string, env []string, ldflags string) *Step {
	if env == nil {
		env = []string{"CGO_ENABLED=0"}
	}
	args := []string{"go", "build", "-ldflags", ldflags, "-o", name, "./cmd/" + pkg}
	return &Step{
		Name:   "labrun/" + name,
		From:   "labrun.dev/labrun/cmd/" + pkg + " (this repository, " + strings.Join(env, " ") + ")",
		Inputs: append(append([]string{}, env...), args...),
		Always: true,
		build: func(ctx context.Context, j *job) error {
			args := slices.Clone(args)
			args[5] = j.File(name)
			return j.run(ctx, Cmd{Dir: repo, Env: append(env, goEnv...), Args: args})
		},
		sources: func(ctx context.Context) (string, error) { return goSources(ctx, repo, pkg, env) },
	}
}

type fileFrom struct {
	step *Step
	name string
}

// componentImage assembles an image from one binary (at /usr/local/bin/NAME,
// its entrypoint) on an empty base or a Debian rootfs. A ref without a tag is
// tagged with the image's own content key.
func componentImage(name, ref string, base *Step, binary fileFrom) *Step {
	path := "/usr/local/bin/" + binary.name
	s := imageStep(name, ref, base, map[string]fileFrom{path: binary}, path)
	s.Inputs = []string{ref, binary.name} // as before the refactor: cached images stay valid
	return s
}

// rootfsImage is a Debian rootfs as an image whose entrypoint is one of its
// own programs.
func rootfsImage(name, ref string, rootfs *Step, entrypoint string) *Step {
	return imageStep(name, ref, rootfs, nil, entrypoint)
}

// imageStep assembles an image: files from other steps' outputs on an empty
// base or a Debian rootfs (base), with an entrypoint.
func imageStep(name, ref string, base *Step, files map[string]fileFrom, entrypoint string) *Step {
	var deps []*Step
	var from []string
	for _, f := range files {
		deps = append(deps, f.step)
		from = append(from, f.step.From)
	}
	if base != nil {
		deps = append(deps, base)
		from = append(from, "on "+base.Name)
		if len(files) == 0 {
			from = []string{base.From}
		}
	}
	desc := strings.Join(from, " ")
	return &Step{
		Name:   "image/" + name,
		From:   desc,
		Inputs: []string{ref, entrypoint},
		Deps:   deps,
		build: func(ctx context.Context, j *job) error {
			full := ref
			if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
				full = ref + ":" + j.step.key[:12]
			}
			img := ociImage{
				Ref:        full,
				Files:      map[string]string{},
				Entrypoint: []string{entrypoint},
				Labels:     map[string]string{LabelKey: j.step.key, LabelFrom: desc},
			}
			for path, f := range files {
				img.Files[path] = f.step.File(f.name)
			}
			if base != nil {
				img.BaseRootfs = base.File("rootfs.tar")
			}
			if err := img.write(j.File(tarFileName)); err != nil {
				return fmt.Errorf("assemble %s: %w", full, err)
			}
			return os.WriteFile(j.File(refFileName), []byte(full+"\n"), 0o644)
		},
	}
}

func jsonField(b []byte, field string) string {
	s := string(b)
	i := strings.Index(s, `"`+field+`": "`)
	if i < 0 {
		return ""
	}
	s = s[i+len(field)+5:]
	return s[:strings.IndexByte(s, '"')]
}

// AddonImage returns the addon image step named name ("kube-router", "dnsmasq"), or nil.
func (p *Plan) AddonImage(name string) *Step {
	for _, s := range p.Addons {
		if s.Name == "image/"+name {
			return s
		}
	}
	return nil
}

// LabImage returns the lab image step named name ("labdns", ...), or nil.
func (p *Plan) LabImage(name string) *Step {
	for _, s := range p.Lab {
		if s.Name == "image/"+name {
			return s
		}
	}
	return nil
}

// probeGlibcImage is the glibc probe on its Debian rootfs, with the jvm back
// end's LabProbe.class at /usr/share/labrun/jvm (probe.Defaults' class path).
func probeGlibcImage(base *Step, binary, class fileFrom) *Step {
	path := "/usr/local/bin/" + binary.name
	return imageStep("probe-glibc", "docker.io/labrun/probe-glibc", base,
		map[string]fileFrom{path: binary, "/usr/share/labrun/jvm/LabProbe.class": class}, path)
}
