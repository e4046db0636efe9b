package diagnose

import (
	"context"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func fakeCluster(t *testing.T, files ...string) *fake.Clientset {
	t.Helper()
	var objs []runtime.Object
	for _, f := range files {
		objs = append(objs, loadObjects(t, f)...)
	}
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.36.1"}
	return cs
}

// forbid makes every verb on resource (in namespace ns, "" for any) fail
// as RBAC would.
func forbid(cs *fake.Clientset, verb, resource, ns string) {
	cs.PrependReactor(verb, resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		if ns != "" && a.GetNamespace() != ns {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", nil)
	})
}

func TestGatherKindLab(t *testing.T) {
	f, err := Gather(context.Background(), fakeCluster(t, "cluster/kind-lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Kubernetes != "v1.36.1" || len(f.Nodes) != 3 || f.Nodes[2].Ready || !f.Nodes[0].Ready || f.Nodes[0].Kernel.Drops != DropsNone {
		t.Errorf("nodes: %+v", f.Nodes)
	}
	if f.KubeProxy.Mode != "iptables" || f.DNS.VIP != "10.96.0.10" || f.DNS.Ready != 2 || f.DNS.Server != "coredns" {
		t.Errorf("proxy %+v dns %+v", f.KubeProxy, f.DNS)
	}
	if f.CoreDNS == nil || len(f.CoreDNS.Servers) != 1 || !reflect.DeepEqual(f.CoreDNS.Servers[0].Forward[0].To, []string{"10.96.53.53"}) {
		t.Errorf("coredns: %+v", f.CoreDNS)
	}
	if len(f.CNIs) != 1 || f.CNIs[0].Name != "labnet" || f.NodeLocal != nil || f.Cilium != nil {
		t.Errorf("cni %+v nodelocal %+v cilium %+v", f.CNIs, f.NodeLocal, f.Cilium)
	}
	if f.Kubelet == nil || !reflect.DeepEqual(f.Kubelet.ClusterDNS, []string{"10.96.0.10"}) {
		t.Errorf("kubelet: %+v", f.Kubelet)
	}
	if len(f.NotRead) != 0 {
		t.Errorf("not read: %q", f.NotRead)
	}
}

func TestGatherNodeLocal(t *testing.T) {
	f, err := Gather(context.Background(), fakeCluster(t, "cluster/kind-lab.yaml", "nodelocal/lab-standin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.NodeLocal == nil || !f.NodeLocal.InterceptsVIP || f.NodeLocal.ListenIP != "169.254.20.10" {
		t.Fatalf("nodelocal: %+v", f.NodeLocal)
	}
}

// A read-only role that lacks some reads still gets every other fact, and
// each missing one is named with its cost.
func TestGatherForbidden(t *testing.T) {
	cs := fakeCluster(t, "cluster/kind-lab.yaml")
	forbid(cs, "list", "nodes", "")
	forbid(cs, "get", "configmaps", "kube-system")
	// DaemonSets: every namespace refused, kube-system allowed.
	cs.PrependReactor("list", "daemonsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "daemonsets"}, "", nil)
		}
		return false, nil, nil
	})
	f, err := Gather(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	// kube-proxy's ConfigMap is refused, its DaemonSet is not: iptables by default.
	if len(f.Nodes) != 0 || f.CoreDNS != nil || f.KubeProxy.Mode != "iptables" || len(f.CNIs) != 1 {
		t.Errorf("nodes %v coredns %v proxy %+v", f.Nodes, f.CoreDNS, f.KubeProxy)
	}
	joined := strings.Join(f.NotRead, "\n")
	for _, want := range []string{"list nodes: forbidden: no kernel versions", "get configmap kube-system/coredns: forbidden: no Corefile facts", "list daemonsets in every namespace: forbidden"} {
		if !strings.Contains(joined, want) {
			t.Errorf("not read lacks %q:\n%s", want, joined)
		}
	}
	if f.DNS.Ready != 2 {
		t.Errorf("DNS endpoints should still be read: %+v", f.DNS)
	}
}

func TestGatherUnreachable(t *testing.T) {
	cs := fakeCluster(t)
	cs.Discovery().(*fakediscovery.FakeDiscovery).PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("down")
	})
	if _, err := Gather(context.Background(), cs); err == nil || !strings.Contains(err.Error(), "reach the API server") {
		t.Errorf("got %v", err)
	}
}

// The seeds' EKS: every fact from the recorded objects, and the prediction
// names both nodes (4.14 drops every clash, 5.4 those with different
// backends, and there are two).
func TestGatherPredictEKS(t *testing.T) {
	f, err := Gather(context.Background(), fakeCluster(t, "cluster/eks-old.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.KubeProxy.Mode != "iptables" || !strings.Contains(f.KubeProxy.Source, "kube-proxy-config") || f.DNS.Ready != 2 || f.Kubelet != nil ||
		len(f.CNIs) != 1 || f.CNIs[0].Name != "aws-vpc-cni" || len(f.NotRead) != 0 {
		t.Fatalf("facts: %+v", f)
	}
	p := Predict(f)
	if p.Verdict != PredictAffected || len(p.AffectedNodes) != 2 {
		t.Errorf("prediction: %+v", p)
	}
}
