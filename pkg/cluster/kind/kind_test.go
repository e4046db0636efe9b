package kind

import (
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"labrun.dev/labrun/pkg/cluster"
)

// kindConfig is what kind receives: for each kube-proxy mode the lab offers,
// the mode reaches kind's networking.kubeProxyMode (kind writes it into
// kube-proxy's configuration as `mode:`), the nodes have the lab's node
// image, and kubelet accepts the lab's cgroup v1 hosts. ipvs is generated
// although this host's kernel lacks IPVS, so that it works where IPVS exists.
func TestKindConfigForEachKubeProxyMode(t *testing.T) {
	for _, mode := range []string{"iptables", "nftables", "ipvs"} {
		s := cluster.DefaultSpec()
		s.Name, s.NodeImage, s.KubeProxyMode, s.PodSubnet = "labrun-test", "labrun/node:v1.36.1", mode, "10.244.0.0/16"
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: spec: %v", mode, err)
		}
		cfg := kindConfig(s)
		if got := string(cfg.Networking.KubeProxyMode); got != mode {
			t.Errorf("%s: kubeProxyMode %q", mode, got)
		}
		if cfg.Networking.PodSubnet != "10.244.0.0/16" {
			t.Errorf("%s: podSubnet %q", mode, cfg.Networking.PodSubnet)
		}
		var cp, workers int
		for _, n := range cfg.Nodes {
			if n.Image != s.NodeImage {
				t.Errorf("%s: node image %q, want %q", mode, n.Image, s.NodeImage)
			}
			switch n.Role {
			case v1alpha4.ControlPlaneRole:
				cp++
			case v1alpha4.WorkerRole:
				workers++
			}
		}
		if cp != 1 || workers != 2 {
			t.Errorf("%s: %d control planes, %d workers; want 1, 2", mode, cp, workers)
		}
		if len(cfg.KubeadmConfigPatches) != 3 || !strings.Contains(cfg.KubeadmConfigPatches[0], "failCgroupV1: false") ||
			!strings.Contains(cfg.KubeadmConfigPatches[1], "encryptionAlgorithm: ECDSA-P256") {
			t.Errorf("%s: kubeadm patches %q: want kubelet's failCgroupV1: false, kubeadm's ECDSA keys and the joining kubelets' flag", mode, cfg.KubeadmConfigPatches)
		}
		// Joining kubelets wait for their certificate: a merge patch of the
		// join configuration, for every kubeadm API version (no apiVersion).
		var join struct {
			APIVersion       string `json:"apiVersion"`
			Kind             string `json:"kind"`
			NodeRegistration struct {
				KubeletExtraArgs map[string]string `json:"kubeletExtraArgs"`
			} `json:"nodeRegistration"`
		}
		if err := yaml.UnmarshalStrict([]byte(cfg.KubeadmConfigPatches[2]), &join); err != nil {
			t.Fatalf("%s: join patch: %v", mode, err)
		}
		if join.Kind != "JoinConfiguration" || join.APIVersion != "" || len(join.NodeRegistration.KubeletExtraArgs) != 1 ||
			join.NodeRegistration.KubeletExtraArgs["rotate-certificates"] != "false" {
			t.Errorf("%s: join patch %q: want JoinConfiguration, no apiVersion, kubelet's rotate-certificates=false only", mode, cfg.KubeadmConfigPatches[2])
		}

		// The configuration survives kind's own file format, strictly.
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "kubeProxyMode: "+mode+"\n") {
			t.Errorf("%s: kind config file lacks kubeProxyMode: %s:\n%s", mode, mode, b)
		}
		var back v1alpha4.Cluster
		if err := yaml.UnmarshalStrict(b, &back); err != nil {
			t.Errorf("%s: kind config does not read back strictly: %v", mode, err)
		}
		if back.Networking.KubeProxyMode != cfg.Networking.KubeProxyMode {
			t.Errorf("%s: read back as %q", mode, back.Networking.KubeProxyMode)
		}
	}
}

func TestSpecRefusesUnknownKubeProxyMode(t *testing.T) {
	s := cluster.DefaultSpec()
	s.NodeImage, s.KubeProxyMode = "labrun/node:v1.36.1", "userspace"
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), `kubeProxy: "userspace"; valid: iptables, nftables, ipvs`) {
		t.Errorf("Validate: %v", err)
	}
}

// With CellWorkers, every worker (and no control plane) joins with the cell
// taint, through a JoinConfiguration patch kubeadm reads as YAML.
func TestKindConfigCellWorkers(t *testing.T) {
	for _, cellWorkers := range []bool{false, true} {
		s := cluster.DefaultSpec()
		s.Name, s.NodeImage, s.Workers, s.CellWorkers = "labrun-test", "labrun/node:v1.36.1", 4, cellWorkers
		cfg := kindConfig(s)
		tainted := 0
		for _, n := range cfg.Nodes {
			if len(n.KubeadmConfigPatches) == 0 {
				continue
			}
			if n.Role != v1alpha4.WorkerRole {
				t.Errorf("cellWorkers %v: a %s node has patches %q", cellWorkers, n.Role, n.KubeadmConfigPatches)
			}
			var join struct {
				Kind             string `json:"kind"`
				NodeRegistration struct {
					Taints []struct{ Key, Effect string } `json:"taints"`
				} `json:"nodeRegistration"`
			}
			if err := yaml.UnmarshalStrict([]byte(n.KubeadmConfigPatches[0]), &join); err != nil {
				t.Fatalf("patch %q: %v", n.KubeadmConfigPatches[0], err)
			}
			taints := join.NodeRegistration.Taints
			if join.Kind != "JoinConfiguration" || len(taints) != 1 || taints[0].Key != cluster.CellTaint || taints[0].Effect != "NoSchedule" {
				t.Errorf("patch %+v: want a JoinConfiguration with the taint %s:NoSchedule", join, cluster.CellTaint)
			}
			tainted++
		}
		if want := map[bool]int{false: 0, true: 4}[cellWorkers]; tainted != want {
			t.Errorf("cellWorkers %v: %d tainted workers, want %d", cellWorkers, tainted, want)
		}
	}
}
