package images

import (
	"context"
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
			os.RemoveAll(root + "/var/cache/apt/archives")
			os.MkdirAll(root+"/var/cache/apt/archives/partial", 0o755)
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
			// Drop what no image needs: package caches (apt-get update's
			// pkgcache.bin and srcpkgcache.bin alone are 78 MB), lists, apt's
			// logs, docs.
			for _, p := range []string{"var/cache/apt", "var/lib/apt/lists", "var/log/apt", "usr/share/doc", "usr/share/man", "usr/share/info"} {
				os.RemoveAll(root + "/" + p)
				os.MkdirAll(root+"/"+p, 0o755)
			}
			return tarRootfs(ctx, j, root)
		},
	}
}

// aptInstall installs packages into the Debian tree at root, as a Dockerfile's
// RUN apt-get would: /proc mounted, the host's resolver to reach the mirror,
// and no service started (policy-rc.d). The tree's own resolv.conf is put
// back, and /proc unmounted, whatever happens.
func aptInstall(ctx context.Context, j *job, root string, packages []string) (err error) {
	resolv := root + "/etc/resolv.conf"
	saved, rerr := os.ReadFile(resolv)
	hostResolv, herr := os.ReadFile("/etc/resolv.conf")
	if herr == nil {
		os.Remove(resolv) // it may be a symlink into the host
		if err := os.WriteFile(resolv, hostResolv, 0o644); err != nil {
			return err
		}
	}
	policy := root + "/usr/sbin/policy-rc.d"
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	if err := j.run(ctx, Cmd{Args: []string{"mount", "-t", "proc", "proc", root + "/proc"}}); err != nil {
		return err
	}
	defer func() {
		if uerr := unmountUnder(root + "/proc"); uerr != nil && err == nil {
			err = uerr
		}
		os.Remove(policy)
		if rerr == nil && herr == nil {
			if werr := os.WriteFile(resolv, saved, 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}()
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	if err := j.run(ctx, Cmd{Env: env, Args: []string{"chroot", root, "apt-get", "update", "-q"}}); err != nil {
		return err
	}
	return j.run(ctx, Cmd{Env: env, Args: append([]string{"chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends"}, packages...)})
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
