package kind

import (
	"crypto/ecdsa"
	"crypto/x509"
	"os"
	"regexp"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"labrun.dev/labrun/pkg/cluster"
)

// The join files are what kubeadm needs to take them: a CA it can sign with,
// a discovery kubeconfig naming kind's API server and trusting that CA with
// the token as its user, and a token of kubeadm's form.
func TestJoinFiles(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	j, err := newJoinFiles("labrun-x")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`).MatchString(j.token) {
		t.Errorf("token %q is not of kubeadm's form", j.token)
	}
	if other, _ := newJoinFiles("labrun-y"); other == nil || other.token == j.token {
		t.Errorf("two clusters got the same token")
	}
	certs, err := cert.CertsFromFile(j.caCert)
	if err != nil || len(certs) != 1 {
		t.Fatalf("CA %s: %v", j.caCert, err)
	}
	ca := certs[0]
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.Subject.CommonName != "kubernetes" {
		t.Errorf("CA: IsCA %v, usage %v, CN %q: want a signing CA named kubernetes", ca.IsCA, ca.KeyUsage, ca.Subject.CommonName)
	}
	key, err := keyutil.PrivateKeyFromFile(j.caKey)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || !ec.PublicKey.Equal(ca.PublicKey) {
		t.Errorf("CA key %T does not match the certificate", key)
	}
	for _, f := range []string{j.caCert, j.caKey, j.discovery} {
		if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v: want 0600", f, err, info.Mode())
		}
	}
	kc, err := clientcmd.LoadFromFile(j.discovery)
	if err != nil {
		t.Fatal(err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if ctx == nil || kc.Clusters[ctx.Cluster] == nil || kc.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("discovery kubeconfig: context %q incomplete", kc.CurrentContext)
	}
	if got := kc.Clusters[ctx.Cluster].Server; got != "https://labrun-x-control-plane:6443" {
		t.Errorf("discovery server %q", got)
	}
	if got, _ := os.ReadFile(j.caCert); string(kc.Clusters[ctx.Cluster].CertificateAuthorityData) != string(got) {
		t.Errorf("discovery kubeconfig does not trust the cluster's CA")
	}
	if kc.AuthInfos[ctx.AuthInfo].Token != j.token {
		t.Errorf("discovery user's token is not the cluster's")
	}

	// Delete removes them with the kubeconfig (the folder is by name).
	if joinDir("labrun-x") != j.dir || !strings.HasPrefix(j.dir, os.TempDir()) {
		t.Errorf("join folder %s", j.dir)
	}
}

// configure mounts the CA into control planes only (a worker's join writes
// its own ca.crt there) and the discovery file into workers, and patches
// kubeadm's init tokens and every join's discovery.
func TestJoinConfigure(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	j, err := newJoinFiles("labrun-x")
	if err != nil {
		t.Fatal(err)
	}
	cfg := kindConfig(cluster.Spec{Name: "labrun-x", ControlPlanes: 1, Workers: 2, KubeProxyMode: "iptables", CellWorkers: true})
	j.configure(cfg)
	for _, n := range cfg.Nodes {
		var paths []string
		for _, m := range n.ExtraMounts {
			if !m.Readonly {
				t.Errorf("%s mount %s is writable", n.Role, m.ContainerPath)
			}
			paths = append(paths, m.ContainerPath)
		}
		want := []string{nodeDiscovery}
		if n.Role == v1alpha4.ControlPlaneRole {
			want = []string{nodeCACert, nodeCAKey}
		}
		if strings.Join(paths, ",") != strings.Join(want, ",") {
			t.Errorf("%s mounts %v, want %v", n.Role, paths, want)
		}
	}
	var init, join bool
	for _, p := range cfg.KubeadmConfigPatches {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(p), &doc); err != nil {
			t.Fatalf("patch %q: %v", p, err)
		}
		switch doc["kind"] {
		case "InitConfiguration":
			init = strings.Contains(p, j.token)
		case "JoinConfiguration":
			d, _ := doc["discovery"].(map[string]any)
			bt, hasBT := d["bootstrapToken"]
			file, _ := d["file"].(map[string]any)
			join = hasBT && bt == nil && file["kubeConfigPath"] == nodeDiscovery && d["tlsBootstrapToken"] == j.token
		}
	}
	if !init || !join {
		t.Errorf("patches %q: init token %v, join discovery %v", cfg.KubeadmConfigPatches, init, join)
	}
}

// RemoveJoinFiles removes every cluster's join folder, and nothing else of
// the lab's clusters folder.
func TestRemoveJoinFiles(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, name := range []string{"labrun-a", "labrun-b"} {
		if _, err := newJoinFiles(name); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := cluster.KubeconfigPath("labrun-a")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := RemoveJoinFiles(); err != nil || n != 2 {
		t.Fatalf("removed %d (%v), want 2", n, err)
	}
	for _, name := range []string{"labrun-a", "labrun-b"} {
		if _, err := os.Stat(joinDir(name)); !os.IsNotExist(err) {
			t.Errorf("%s: join folder still there (%v)", name, err)
		}
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Errorf("the kubeconfig went too: %v", err)
	}
}
