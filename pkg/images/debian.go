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

// debootstrapStep makes rootfs.tar from `debootstrap --variant=minbase`.
func debootstrapStep(v Versions, name string, packages []string) *Step {
	inc := strings.Join(packages, ",")
	return &Step{
		Name:   "rootfs/" + name,
		From:   "debootstrap --variant=minbase " + v.Debian.Suite + " +" + inc,
		Inputs: []string{v.Debian.Suite, v.Debian.Mirror, inc},
		build: func(ctx context.Context, j *job) error {
			root := j.File("root")
			if err := j.run(ctx, Cmd{Args: []string{"debootstrap", "--variant=minbase", "--include=" + inc,
				v.Debian.Suite, root, v.Debian.Mirror}}); err != nil {
				return err
			}
			// Drop what no image needs: package caches, lists, docs.
			for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"} {
				os.RemoveAll(root + "/" + p)
				os.MkdirAll(root+"/"+p, 0o755)
			}
			if err := j.run(ctx, Cmd{Args: []string{"tar", "--numeric-owner", "-C", root, "-cf", j.File("rootfs.tar"), "."}}); err != nil {
				return err
			}
			return os.RemoveAll(root)
		},
	}
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
