package images

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	data "labrun.dev/labrun/images"
)

// Versions is images/versions.yaml: every version the pipeline builds.
type Versions struct {
	Debian struct {
		Suite  string `yaml:"suite"`
		Mirror string `yaml:"mirror"`
	} `yaml:"debian"`
	Kubernetes []Kubernetes `yaml:"kubernetes"`
	Containerd string       `yaml:"containerd"`
	Runc       string       `yaml:"runc"`
	CNIPlugins string       `yaml:"cniPlugins"`
	KubeRouter string       `yaml:"kubeRouter"`
}

// Kubernetes is one supported Kubernetes version and the images kubeadm
// expects with it.
type Kubernetes struct {
	Version string `yaml:"version"`
	Etcd    string `yaml:"etcd"`
	CoreDNS string `yaml:"coredns"`
	Pause   string `yaml:"pause"`
	Crictl  string `yaml:"crictl"`
}

// Minor returns "36" for "v1.36.1".
func (k Kubernetes) Minor() string {
	parts := strings.Split(strings.TrimPrefix(k.Version, "v"), ".")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// EtcdTag is the tag kubeadm expects for etcd ("3.6.8-0" for v3.6.8).
func (k Kubernetes) EtcdTag() string { return strings.TrimPrefix(k.Etcd, "v") + "-0" }

// LoadVersions reads the pinned versions embedded from images/versions.yaml.
func LoadVersions() (Versions, error) {
	b, err := data.FS.ReadFile("versions.yaml")
	if err != nil {
		return Versions{}, err
	}
	var v Versions
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		return Versions{}, fmt.Errorf("images/versions.yaml: %w", err)
	}
	if len(v.Kubernetes) == 0 {
		return Versions{}, fmt.Errorf("images/versions.yaml: kubernetes: no version listed")
	}
	return v, nil
}

// Supported lists the Kubernetes versions the build supports, default first.
func (v Versions) Supported() []string {
	var out []string
	for _, k := range v.Kubernetes {
		out = append(out, k.Version)
	}
	return out
}

// DefaultKubernetes is the version used when none is asked for.
func (v Versions) DefaultKubernetes() string { return v.Kubernetes[0].Version }

// Kube returns the entry for version ("" means the default), or an error
// listing the supported versions.
func (v Versions) Kube(version string) (Kubernetes, error) {
	if version == "" {
		return v.Kubernetes[0], nil
	}
	for _, k := range v.Kubernetes {
		if k.Version == version {
			return k, nil
		}
	}
	return Kubernetes{}, fmt.Errorf("kubernetes %s is not supported by the image build; supported: %s (images/versions.yaml)",
		version, strings.Join(v.Supported(), ", "))
}
