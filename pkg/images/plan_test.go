package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/fstest"
)

// defaultPlan is the image plan of the default Kubernetes version.
func defaultPlan(t *testing.T) *Plan {
	t.Helper()
	v, err := LoadVersions()
	if err != nil {
		t.Fatal(err)
	}
	k, err := v.Kube(v.DefaultKubernetes())
	if err != nil {
		t.Fatal(err)
	}
	return NewPlan(v, k, "/repo")
}

func TestPlanRoots(t *testing.T) {
	p := defaultPlan(t)
	for _, tc := range []struct {
		name    string
		addons  []string
		want    []string // step names after the lab node image
		wantErr string
	}{
		{name: "nil builds every addon", addons: nil, want: []string{"image/kube-router", "image/dnsmasq"}},
		{name: "none", addons: []string{}, want: nil},
		{name: "one", addons: []string{"dnsmasq"}, want: []string{"image/dnsmasq"}},
		{name: "unknown", addons: []string{"calico"}, wantErr: `addon image "calico" is not in the image plan; valid: kube-router, dnsmasq`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots, err := p.Roots(tc.addons)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if roots[0] != p.LabNode {
				t.Errorf("first root = %s, want the lab node image", roots[0].Name)
			}
			var got []string
			for _, s := range roots[1:] {
				got = append(got, s.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("addon roots = %v, want %v", got, tc.want)
			}
		})
	}
}

// For the published node only the lab's own images (and the addons named)
// are built: nothing of the node, Kubernetes or its runtime.
func TestPlanLabRoots(t *testing.T) {
	p := defaultPlan(t)
	roots, err := p.LabRoots([]string{"dnsmasq"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range order(roots) {
		names = append(names, s.Name)
	}
	all := strings.Join(names, " ")
	for _, want := range []string{"image/labdns", "image/probe-glibc", "image/probe-musl", "image/labagent", "image/dnsmasq", "rootfs/base"} {
		if !strings.Contains(all, want) {
			t.Errorf("steps %s: no %s", all, want)
		}
	}
	for _, never := range []string{"go/kubernetes-", "go/containerd-", "go/etcd-", "node-", "docker/node", "rootfs/node", "image/kube-router", "image/kube-proxy"} {
		if strings.Contains(all, never) {
			t.Errorf("steps %s: %s is built for the published node", all, never)
		}
	}
	if _, err := p.LabRoots([]string{"calico"}); err == nil {
		t.Error("an unknown addon: no error")
	}
}

// The lab node image is the plain node image with the lab's own images
// added: a layer of its own, so a change to this repository's code rebuilds
// only that layer.
func TestPlanLabNode(t *testing.T) {
	p := defaultPlan(t)
	k := p.Kube
	if p.LabNode.Image != LabNodeImage(k) || p.Node.Image != NodeImage(k) {
		t.Fatalf("images %q, %q", p.LabNode.Image, p.Node.Image)
	}
	deps := map[*Step]bool{}
	for _, d := range p.LabNode.Deps {
		deps[d] = true
	}
	for _, s := range append([]*Step{p.Node}, p.Lab...) {
		if !deps[s] {
			t.Errorf("lab node image does not depend on %s", s.Name)
		}
	}
}

// tarTree lays files out from /, executables under usr/local/bin, with the
// replacements made.
func TestTarTree(t *testing.T) {
	files := fstest.MapFS{
		"etc/containerd/config.toml": {Data: []byte(`sandbox = "registry.k8s.io/pause:@PAUSE@"`)},
		"usr/local/bin/entrypoint":   {Data: []byte("#!/bin/sh\n")},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tarTree(tw, files, strings.NewReplacer("@PAUSE@", "3.10")); err != nil {
		t.Fatal(err)
	}
	if err := tarSymlink(tw, "/etc/systemd/system/multi-user.target.wants/x.service", "/etc/systemd/system/x.service"); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	want := map[string]string{
		"etc/containerd/config.toml":                           `0644 sandbox = "registry.k8s.io/pause:3.10"`,
		"usr/local/bin/entrypoint":                             "0755 #!/bin/sh\n",
		"etc/systemd/system/multi-user.target.wants/x.service": "-> /etc/systemd/system/x.service",
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got := fmt.Sprintf("%04o %s", h.Mode, b)
		if h.Typeflag == tar.TypeSymlink {
			got = "-> " + h.Linkname
		}
		if got != want[h.Name] {
			t.Errorf("%s: %q, want %q", h.Name, got, want[h.Name])
		}
		delete(want, h.Name)
	}
	for name := range want {
		t.Errorf("%s missing", name)
	}
}
