package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Debian package sets of the root file systems the pipeline makes.
var (
	// nodePackages: what a kind node runs besides the binaries built from Go.
	nodePackages = []string{
		"systemd", "systemd-sysv", "dbus", "iptables", "nftables", "conntrack", "iproute2",
		"ethtool", "socat", "util-linux", "mount", "kmod", "procps", "ca-certificates",
		"libseccomp2", "tcpdump",
		// isal's igzip: containerd decompresses image layers with it when it
		// is on the PATH. A node unpacks the probe's 156 MB layer in 0.5 s of
		// CPU with it, 1.9 s with Go's gzip (measured here): at every
		// bring-up, on every node, beside kubeadm on 2 cores.
		"isal",
		// getfattr: the node image's build checks that no snapshot it keeps
		// has an overlay xattr (pkg/images/node.go, importScript).
		"attr",
	}
	// toolsPackages: the base of images whose daemons program the network
	// (kube-proxy, the pod network daemon, the lab agent); kube-proxy ipvs mode
	// needs ipset.
	toolsPackages = []string{"iptables", "nftables", "conntrack", "iproute2", "ipset", "ca-certificates"}
	// probePackages: the glibc probe's base, with gRPC C-core for the grpc
	// back ends and tcpdump for captures on the DNS path.
	// openjdk-17-jre-headless runs the jvm back end's worker (LabProbe.class).
	probePackages = []string{"python3", "python3-grpcio", "tcpdump", "ca-certificates", "openjdk-17-jre-headless"}
	// dnsmasqPackages: the DNS cache in front of CoreDNS (dns: dnsmasq-coredns).
	dnsmasqPackages = []string{"dnsmasq-base"}
)

// baseStep makes the Debian base every root file system extends: one
// `debootstrap --variant=minbase`. (A debootstrap per image ran the same base
// install four times: 27 to 40 s each here, where an extension takes 2 to
// 9 s.) Its package lists are kept: the extensions' apt-get update then
// fetches only what changed on the mirror since.
func baseStep(v Versions) *Step {
	return &Step{
		Name:   "rootfs/base",
		From:   "debootstrap --variant=minbase " + v.Debian.Suite,
		Inputs: []string{v.Debian.Suite, v.Debian.Mirror},
		build: func(ctx context.Context, j *job) error {
			root := j.File("root")
			if err := j.run(ctx, Cmd{Args: []string{"debootstrap", "--variant=minbase", v.Debian.Suite, root, v.Debian.Mirror}}); err != nil {
				return err
			}
			// apt refuses to run without archives/partial.
			if err := emptyDirs(root, "var/cache/apt/archives", "var/cache/apt/archives/partial"); err != nil {
				return err
			}
			return tarRootfs(ctx, j, root)
		},
	}
}

// aptRecipe is part of a root file system's key: change it with the recipe.
const aptRecipe = "apt-get install -y --no-install-recommends; then drop var/cache/apt, var/lib/apt/lists, var/log/apt, usr/share/{doc,man,info}"

// debianStep makes rootfs.tar: the base with packages (and what they depend
// on, not what they recommend, as debootstrap --include did) installed by
// apt-get in a chroot.
func debianStep(base *Step, name string, packages []string) *Step {
	return &Step{
		Name:   "rootfs/" + name,
		From:   base.Name + " + apt-get install " + strings.Join(packages, " "),
		Inputs: append([]string{aptRecipe}, packages...),
		Deps:   []*Step{base},
		build: func(ctx context.Context, j *job) error {
			root := j.File("root")
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			if err := j.run(ctx, Cmd{Args: []string{"tar", "--numeric-owner", "-C", root, "-xf", base.File("rootfs.tar")}}); err != nil {
				return err
			}
			if err := aptInstall(ctx, j, root, packages); err != nil {
				return err
			}
			// apt-get update's pkgcache.bin and srcpkgcache.bin alone are 78 MB.
			if err := emptyDirs(root, "var/cache/apt", "var/lib/apt/lists", "var/log/apt", "usr/share/doc", "usr/share/man", "usr/share/info"); err != nil {
				return err
			}
			return tarRootfs(ctx, j, root)
		},
	}
}

// aptInstall installs packages into the Debian tree at root, as a Dockerfile's
// RUN apt-get would: /proc mounted, the host's resolver to reach the mirror,
// and no service started (policy-rc.d). Once anything is changed, the tree's
// own resolv.conf (or none) is put back, policy-rc.d removed and /proc
// unmounted, whatever happens.
func aptInstall(ctx context.Context, j *job, root string, packages []string) (err error) {
	resolv, policy := root+"/etc/resolv.conf", root+"/usr/sbin/policy-rc.d"
	saved, rerr := os.ReadFile(resolv)
	hostResolv, herr := os.ReadFile("/etc/resolv.conf")
	defer func() {
		var errs []error
		if uerr := unmountUnder(root + "/proc"); uerr != nil {
			errs = append(errs, uerr)
		}
		if perr := os.Remove(policy); perr != nil && !os.IsNotExist(perr) {
			errs = append(errs, perr)
		}
		if herr == nil {
			if rerr == nil {
				errs = append(errs, os.WriteFile(resolv, saved, 0o644))
			} else if rmerr := os.Remove(resolv); rmerr != nil && !os.IsNotExist(rmerr) {
				errs = append(errs, rmerr)
			}
		}
		err = errors.Join(append([]error{err}, errs...)...)
	}()
	if herr == nil {
		os.Remove(resolv) // it may be a symlink into the host
		if err := os.WriteFile(resolv, hostResolv, 0o644); err != nil {
			return fmt.Errorf("resolver for the mirror: %w", err)
		}
	}
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return fmt.Errorf("policy-rc.d: %w", err)
	}
	if err := j.run(ctx, Cmd{Args: []string{"mount", "-t", "proc", "proc", root + "/proc"}}); err != nil {
		return err
	}
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	if err := j.run(ctx, Cmd{Env: env, Args: []string{"chroot", root, "apt-get", "update", "-q"}}); err != nil {
		return err
	}
	return j.run(ctx, Cmd{Env: env, Args: append([]string{"chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends"}, packages...)})
}

// emptyDirs empties the folders paths (relative to root) and leaves them
// there, empty: what no image needs (package caches, lists, logs, docs).
func emptyDirs(root string, paths ...string) error {
	for _, p := range paths {
		if err := os.RemoveAll(root + "/" + p); err != nil {
			return fmt.Errorf("empty %s: %w", p, err)
		}
		if err := os.MkdirAll(root+"/"+p, 0o755); err != nil {
			return fmt.Errorf("empty %s: %w", p, err)
		}
	}
	return nil
}

// tarRootfs tars the tree at root into rootfs.tar and removes the tree.
func tarRootfs(ctx context.Context, j *job, root string) error {
	if err := j.run(ctx, Cmd{Args: []string{"tar", "--numeric-owner", "-C", root, "-cf", j.File("rootfs.tar"), "."}}); err != nil {
		return err
	}
	return os.RemoveAll(root)
}

// importStep imports a rootfs tarball into Docker as a base image (the node
// image is committed on top of it, so the two share that layer).
func importStep(rootfs *Step, ref string) *Step {
	return &Step{
		Name:  "docker/" + strings.TrimPrefix(rootfs.Name, "rootfs/"),
		From:  rootfs.From,
		Deps:  []*Step{rootfs},
		Image: ref,
		build: func(ctx context.Context, j *job) error {
			f, err := os.Open(rootfs.File("rootfs.tar"))
			if err != nil {
				return err
			}
			defer f.Close()
			// The label is the step's key: the image counts as built only once
			// docker import has finished writing it.
			_, err = j.docker.RunStdin(ctx, f, "import",
				"--change", "LABEL "+LabelKey+"="+j.step.key,
				"--change", fmt.Sprintf("LABEL %s=%q", LabelFrom, j.step.From),
				"-", ref)
			return err
		},
	}
}
