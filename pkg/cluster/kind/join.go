package kind

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"labrun.dev/labrun/pkg/cluster"
)

// A worker's `kubeadm join`, as kind configures it, finds the control plane
// by a bootstrap token: it fetches the cluster-info ConfigMap and waits until
// the controller manager's bootstrap signer has signed it with the token. On
// 2 cores the controller manager has often not started its controllers when
// kind starts the join (it waits for its leader lease, then makes its
// controllers), and kubeadm looks again only 5 s later: 5 s of most
// bring-ups. With a discovery file instead, kubeadm trusts the cluster's CA
// from the file and needs no signature. So labrun makes the cluster's CA
// itself (kubeadm init uses a CA it finds in place), gives it to the control
// plane, and gives the workers a kubeconfig naming the API server and that
// CA, and a bootstrap token of the cluster's own for their kubelets' TLS
// bootstrap.

// joinFiles are the files of one cluster's joins, in a folder of their own.
type joinFiles struct {
	dir       string
	token     string // the bootstrap token kubeadm init makes, and the kubelets use
	caCert    string // the cluster's CA, mounted into the control plane
	caKey     string
	discovery string // the workers' discovery kubeconfig, mounted into them
}

// Where the files go in the nodes.
const (
	nodeCACert    = "/etc/kubernetes/pki/ca.crt"
	nodeCAKey     = "/etc/kubernetes/pki/ca.key"
	nodeDiscovery = "/kind/labrun-discovery.conf"
)

// joinDir is where a cluster's join files are kept on the host, beside its
// kubeconfig; Delete removes it.
func joinDir(name string) string {
	return filepath.Join(filepath.Dir(cluster.KubeconfigPath(name)), name+"-join")
}

// newJoinFiles makes a CA (ECDSA P-256, as kubeadm's own keys are here), a
// bootstrap token and the discovery kubeconfig for cluster name, whose API
// server kind names NAME-control-plane:6443 when it has one control plane.
func newJoinFiles(name string) (*joinFiles, error) {
	j := &joinFiles{dir: joinDir(name)}
	if err := os.RemoveAll(j.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return nil, err
	}
	var err error
	if j.token, err = bootstrapToken(); err != nil {
		return nil, fmt.Errorf("make its bootstrap token: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make its CA's key: %w", err)
	}
	ca, err := cert.NewSelfSignedCACert(cert.Config{CommonName: "kubernetes"}, key)
	if err != nil {
		return nil, fmt.Errorf("make its CA: %w", err)
	}
	caPEM, err := cert.EncodeCertificates(ca)
	if err != nil {
		return nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	discovery := clientcmdapi.NewConfig()
	discovery.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   "https://" + name + "-control-plane:6443",
		CertificateAuthorityData: caPEM,
	}
	// kubeadm refuses a discovery file whose context names no user ("user
	// was not specified for context"), tlsBootstrapToken or not: the token,
	// as its token discovery would give.
	discovery.AuthInfos["tls-bootstrap-token-user"] = &clientcmdapi.AuthInfo{Token: j.token}
	discovery.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "tls-bootstrap-token-user"}
	discovery.CurrentContext = name
	discoveryYAML, err := clientcmd.Write(*discovery)
	if err != nil {
		return nil, fmt.Errorf("write its discovery kubeconfig: %w", err)
	}
	j.caCert, j.caKey, j.discovery = filepath.Join(j.dir, "ca.crt"), filepath.Join(j.dir, "ca.key"), filepath.Join(j.dir, "discovery.conf")
	for path, data := range map[string][]byte{j.caCert: caPEM, j.caKey: keyPEM, j.discovery: discoveryYAML} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("join files: %w", err)
		}
	}
	return j, nil
}

// RemoveJoinFiles removes every cluster's join files: for `labrun clean`,
// under the host lock once no lab cluster is left (a kill -9 during a
// cluster's creation leaves them, its CA key among them).
func RemoveJoinFiles() (int, error) {
	dirs, err := filepath.Glob(joinDir("*"))
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return 0, err
		}
	}
	return len(dirs), nil
}

// bootstrapToken returns a random kubeadm bootstrap token, [a-z0-9]{6}.[a-z0-9]{16}.
func bootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	for i := range b {
		if i == 6 {
			b[i] = '.'
			continue
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

// configure makes kind's configuration use the files: the CA mounted into
// the control plane, the discovery kubeconfig into the workers, the token in
// kubeadm init's bootstrap tokens and every join's discovery.
func (j *joinFiles) configure(cfg *v1alpha4.Cluster) {
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		switch n.Role {
		case v1alpha4.ControlPlaneRole:
			n.ExtraMounts = append(n.ExtraMounts,
				v1alpha4.Mount{HostPath: j.caCert, ContainerPath: nodeCACert, Readonly: true},
				v1alpha4.Mount{HostPath: j.caKey, ContainerPath: nodeCAKey, Readonly: true})
		case v1alpha4.WorkerRole:
			n.ExtraMounts = append(n.ExtraMounts,
				v1alpha4.Mount{HostPath: j.discovery, ContainerPath: nodeDiscovery, Readonly: true})
		}
	}
	cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches,
		fmt.Sprintf("kind: InitConfiguration\nbootstrapTokens:\n- token: %q\n", j.token),
		// A merge patch: null removes kind's token discovery.
		fmt.Sprintf("kind: JoinConfiguration\ndiscovery:\n  bootstrapToken: null\n  file:\n    kubeConfigPath: %s\n  tlsBootstrapToken: %q\n",
			nodeDiscovery, j.token))
}
