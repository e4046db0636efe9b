package addons

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"

	"labrun.dev/labrun/pkg/hostcheck"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// labKernel is the kernel FACTS.md measured: VXLAN, no openvswitch.
var labKernel = hostcheck.Kernel{Findings: []hostcheck.Finding{
	{Feature: hostcheck.OpenvSwitch, State: hostcheck.Absent, Evidence: "CONFIG_OPENVSWITCH not set"},
	{Feature: hostcheck.IPIP, State: hostcheck.Absent, Evidence: "CONFIG_NET_IPIP not set"},
	{Feature: hostcheck.VXLAN, State: hostcheck.Present, Evidence: "ip link add … type vxlan succeeded"},
}}

func fixture(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := pubDecode(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return objs
}

func published(t *testing.T, axis string) []images.Published {
	t.Helper()
	pub, err := pubImagesFor(axis)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func typedDaemonSet(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.DaemonSet {
	t.Helper()
	u := pubFind(objs, "DaemonSet", name)
	if u == nil {
		t.Fatalf("no DaemonSet %s", name)
	}
	ds := &appsv1.DaemonSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, ds, true); err != nil {
		t.Fatalf("DaemonSet %s does not read back strictly: %v", name, err)
	}
	return ds
}

func env(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "<from>"
		}
		m[e.Name] = v
	}
	return m
}

// Both networks give kind the pod subnet they write into their own settings,
// and kind's networking then has no default CNI (pkg/cluster's
// podnetwork_test.go checks kindConfig with a PodNetwork).
func TestPublishedNetworksPodSubnet(t *testing.T) {
	for name, make := range map[string]func(*images.Plan) (podNet, error){
		"calico": func(p *images.Plan) (podNet, error) { n, err := Calico(p); return n, err },
		"weave":  func(p *images.Plan) (podNet, error) { n, err := Weave(p); return n, err },
	} {
		n, err := make(nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n.Name() != name || n.PodSubnet() != "10.244.0.0/16" {
			t.Errorf("%s: name %q, pod subnet %q", name, n.Name(), n.PodSubnet())
		}
		// Calico's mode is fixed; Weave's is decided by the kernel at Install.
		if m := n.(interface{ Mode() string }).Mode(); (name == "calico") != (m == "VXLAN") || (name == "weave" && m != "") {
			t.Errorf("%s: mode %q before Install", name, m)
		}
	}
}

type podNet interface {
	Name() string
	PodSubnet() string
}

func TestDecodeManifest(t *testing.T) {
	objs := fixture(t, "calico-shape.yaml")
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
	}
	want := []string{"ServiceAccount/calico-node", "ConfigMap/calico-config", "CustomResourceDefinition/ippools.crd.projectcalico.org",
		"DaemonSet/calico-node", "Deployment/calico-kube-controllers"}
	if !slices.Equal(kinds, want) {
		t.Errorf("calico objects %v, want %v (empty documents skipped)", kinds, want)
	}
	// Weave's manifest is one v1 List: its items are applied, not the List.
	kinds = nil
	for _, o := range fixture(t, "weave-shape.yaml") {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
	}
	if !slices.Equal(kinds, []string{"ServiceAccount/weave-net", "DaemonSet/weave-net"}) {
		t.Errorf("weave objects %v", kinds)
	}
	for _, bad := range []string{"", "---\n---\n", "metadata: {name: x}\n", "kind: [\n"} {
		if _, err := pubDecode([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// Calico in VXLAN mode, as its own calico-vxlan.yaml does it but with VXLAN
// Always, in kind's pod subnet, with the pinned published images.
func TestPatchCalico(t *testing.T) {
	objs := fixture(t, "calico-shape.yaml")
	if err := pubPatchCalico(objs, published(t, "podNetwork=calico"), PublishedPodSubnet); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := unstructured.NestedString(pubFind(objs, "ConfigMap", "calico-config").Object, "data", "calico_backend"); b != "vxlan" {
		t.Errorf("calico_backend %q, want vxlan", b)
	}
	ds := typedDaemonSet(t, objs, "calico-node")
	c := ds.Spec.Template.Spec.Containers[0]
	e := env(c)
	for k, v := range map[string]string{
		"CALICO_IPV4POOL_IPIP": "Never", "CALICO_IPV4POOL_VXLAN": "Always", "CALICO_IPV6POOL_VXLAN": "Never",
		"CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
		// untouched
		"CALICO_NETWORKING_BACKEND": "<from>", "CLUSTER_TYPE": "k8s,bgp", "FELIX_VXLANMTU": "<from>", "FELIX_IPV6SUPPORT": "false",
	} {
		if e[k] != v {
			t.Errorf("calico-node %s=%q, want %q", k, e[k], v)
		}
	}
	if len(c.Env) != 9 {
		t.Errorf("calico-node has %d env entries, want 9 (8 + the pool CIDR): %v", len(c.Env), e)
	}
	if got := c.LivenessProbe.Exec.Command; !slices.Equal(got, []string{"/bin/calico-node", "-felix-live"}) {
		t.Errorf("liveness %v: BIRD's check must go (BIRD does not run with the vxlan backend)", got)
	}
	if got := c.ReadinessProbe.Exec.Command; !slices.Equal(got, []string{"/bin/calico-node", "-felix-ready"}) {
		t.Errorf("readiness %v", got)
	}
	wantImages := map[string]string{
		"upgrade-ipam": "quay.io/calico/cni:v3.31.3", "install-cni": "quay.io/calico/cni:v3.31.3",
		"ebpf-bootstrap": "quay.io/calico/node:v3.31.3", "calico-node": "quay.io/calico/node:v3.31.3",
	}
	for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
		if c.Image != wantImages[c.Name] || c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s: image %q %s, want %q IfNotPresent", c.Name, c.Image, c.ImagePullPolicy, wantImages[c.Name])
		}
	}
	kc := pubFind(objs, "Deployment", "calico-kube-controllers")
	cs, _, _ := unstructured.NestedSlice(kc.Object, "spec", "template", "spec", "containers")
	if img := cs[0].(map[string]any)["image"]; img != "quay.io/calico/kube-controllers:v3.31.3" {
		t.Errorf("kube-controllers image %v", img)
	}
	// What is applied has no typed-round-trip leftovers.
	for _, o := range objs {
		if _, ok := o.Object["status"]; ok {
			t.Errorf("%s %s has a status", o.GetKind(), o.GetName())
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "template", "metadata", "creationTimestamp"); ok {
			t.Errorf("%s %s has a template creationTimestamp", o.GetKind(), o.GetName())
		}
	}
}

func TestPatchCalicoRefusesOtherShapes(t *testing.T) {
	pub := published(t, "podNetwork=calico")
	for _, tc := range []struct {
		name string
		edit func([]*unstructured.Unstructured) []*unstructured.Unstructured
		want string
	}{
		{"no ConfigMap", func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(o, func(u *unstructured.Unstructured) bool { return u.GetKind() == "ConfigMap" })
		}, "no ConfigMap calico-config"},
		{"no DaemonSet", func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(o, func(u *unstructured.Unstructured) bool { return u.GetKind() == "DaemonSet" })
		}, "no DaemonSet calico-node"},
		{"another release", func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			kc := pubFind(o, "Deployment", "calico-kube-controllers")
			cs, _, _ := unstructured.NestedSlice(kc.Object, "spec", "template", "spec", "containers")
			cs[0].(map[string]any)["image"] = "quay.io/calico/kube-controllers:v3.30.0"
			_ = unstructured.SetNestedSlice(kc.Object, cs, "spec", "template", "spec", "containers")
			return o
		}, "image quay.io/calico/kube-controllers:v3.30.0, but images/published.yaml pins quay.io/calico/kube-controllers:v3.31.3"},
		{"unknown image", func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			kc := pubFind(o, "Deployment", "calico-kube-controllers")
			cs, _, _ := unstructured.NestedSlice(kc.Object, "spec", "template", "spec", "containers")
			cs[0].(map[string]any)["image"] = "quay.io/calico/typha:v3.31.3"
			_ = unstructured.SetNestedSlice(kc.Object, cs, "spec", "template", "spec", "containers")
			return o
		}, "image quay.io/calico/typha:v3.31.3 is not in images/published.yaml"},
	} {
		objs := tc.edit(fixture(t, "calico-shape.yaml"))
		err := pubPatchCalico(objs, pub, PublishedPodSubnet)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Weave Net in the mode the kernel allows: sleeve here (no openvswitch),
// forced and recorded; fastdp left to Weave where the datapath exists.
func TestPatchWeave(t *testing.T) {
	withOVS := hostcheck.Kernel{Findings: []hostcheck.Finding{{Feature: hostcheck.OpenvSwitch, State: hostcheck.Present}}}
	for _, tc := range []struct {
		kernel    *hostcheck.Kernel
		mode      string // the annotation
		modeStart string // Weave's Mode
		noFastdp  bool
	}{
		{&labKernel, "sleeve", "sleeve (kernel lacks openvswitch: CONFIG_OPENVSWITCH not set)", true},
		{&withOVS, "fastdp", "fastdp", false},
		{nil, "auto", "auto: fastdp, else sleeve", false},
	} {
		n, err := Weave(nil)
		if err != nil {
			t.Fatal(err)
		}
		w := n.(*publishedNetwork)
		objs := fixture(t, "weave-shape.yaml")
		if err := w.patch(objs, published(t, "podNetwork=weave"), tc.kernel); err != nil {
			t.Fatal(err)
		}
		if m := n.(interface{ Mode() string }).Mode(); !strings.HasPrefix(m, tc.modeStart) {
			t.Errorf("Mode %q, want %q…", m, tc.modeStart)
		}
		ds := typedDaemonSet(t, objs, "weave-net")
		if ds.Annotations[weaveModeAnnotation] != tc.mode || ds.Spec.Template.Annotations[weaveModeAnnotation] != tc.mode {
			t.Errorf("%s: annotations %v / %v", tc.mode, ds.Annotations, ds.Spec.Template.Annotations)
		}
		spec := ds.Spec.Template.Spec
		e := env(spec.Containers[0])
		if spec.Containers[0].Name != "weave" || e["IPALLOC_RANGE"] != "10.244.0.0/16" || e["INIT_CONTAINER"] != "true" {
			t.Errorf("%s: weave env %v", tc.mode, e)
		}
		if _, set := e["WEAVE_NO_FASTDP"]; set != tc.noFastdp {
			t.Errorf("%s: WEAVE_NO_FASTDP set %v, want %v", tc.mode, set, tc.noFastdp)
		}
		want := map[string]string{"weave-init": "docker.io/weaveworks/weave-kube:2.8.1",
			"weave": "docker.io/weaveworks/weave-kube:2.8.1", "weave-npc": "docker.io/weaveworks/weave-npc:2.8.1"}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if c.Image != want[c.Name] || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("%s: %s image %q %s", tc.mode, c.Name, c.Image, c.ImagePullPolicy)
			}
		}
	}
}

// Without its published images, Install fails before anything else with the
// very reason `labrun plan` gives (hostcheck.NotRun), and so does a kernel
// without VXLAN for Calico.
func TestPublishedNetworkInstallGivesHostReason(t *testing.T) {
	t.Setenv(images.ManifestsEnv, "")
	cache := t.TempDir()
	for _, tc := range []struct {
		name   string
		kernel hostcheck.Kernel
		want   []string
	}{
		{"calico", labKernel, []string{"podNetwork calico: images quay.io/calico/node:v3.31.3", "github.com/projectcalico/api is refused"}},
		{"weave", labKernel, []string{"podNetwork weave: images docker.io/weaveworks/weave-kube:2.8.1", "github.com/weaveworks/weave is refused"}},
		{"calico", hostcheck.Kernel{Findings: []hostcheck.Finding{{Feature: hostcheck.VXLAN, State: hostcheck.Absent, Evidence: "CONFIG_VXLAN not set"}}},
			[]string{"podNetwork calico (VXLAN mode): kernel lacks VXLAN: CONFIG_VXLAN not set"}},
	} {
		var n *publishedNetwork
		if tc.name == "calico" {
			p, _ := Calico(nil)
			n = p.(*publishedNetwork)
		} else {
			p, _ := Weave(nil)
			n = p.(*publishedNetwork)
		}
		n.cache = cache
		n.probe = func(context.Context) (hostcheck.Kernel, error) { return tc.kernel, nil }
		err := n.Install(context.Background(), nil) // fails before it needs a cluster
		want := hostcheck.NotRun(tc.kernel, scenario.Cluster{PodNetwork: tc.name}, hostcheck.InCache(cache))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant hostcheck's reason %q", tc.name, err, want)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error lacks %q", tc.name, s)
			}
		}
	}
}

// The real published manifests, when given (LABRUN_MANIFESTS=DIR holding
// calico.yaml and weave.yaml): their pins are checked, and the patches find
// every object and setting they change.
func TestPatchRealManifests(t *testing.T) {
	dir := os.Getenv(images.ManifestsEnv)
	if dir == "" {
		t.Skip("the published manifests are not in the repository: set " + images.ManifestsEnv + "=DIR holding calico.yaml / weave.yaml to check the patches against them")
	}
	all, err := images.LoadManifests()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"calico", "weave"} {
		if _, err := os.Stat(filepath.Join(dir, name+".yaml")); err != nil {
			t.Logf("%s: %v (skipped)", name, err)
			continue
		}
		m, err := images.FindManifest(all, name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := images.GetManifest(context.Background(), m, images.ManifestOptions{Cache: t.TempDir(), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s: sha256 %s, %s", name, m.Version, f.Digest, f.Trust)
		objs, err := pubDecode(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		pub := published(t, "podNetwork="+name)
		switch name {
		case "calico":
			if err := pubPatchCalico(objs, pub, PublishedPodSubnet); err != nil {
				t.Fatal(err)
			}
			c := typedDaemonSet(t, objs, "calico-node").Spec.Template.Spec.Containers[0]
			e := env(c)
			if e["CALICO_IPV4POOL_IPIP"] != "Never" || e["CALICO_IPV4POOL_VXLAN"] != "Always" || e["CALICO_IPV4POOL_CIDR"] != PublishedPodSubnet {
				t.Errorf("calico-node env %v", e)
			}
			if slices.Contains(c.ReadinessProbe.Exec.Command, "-bird-ready") || slices.Contains(c.LivenessProbe.Exec.Command, "-bird-live") {
				t.Errorf("BIRD probes left: %v %v", c.LivenessProbe.Exec.Command, c.ReadinessProbe.Exec.Command)
			}
		case "weave":
			if err := pubPatchWeave(objs, pub, PublishedPodSubnet, hostcheck.WeaveMode(labKernel)); err != nil {
				t.Fatal(err)
			}
			e := env(typedDaemonSet(t, objs, "weave-net").Spec.Template.Spec.Containers[0])
			if e["IPALLOC_RANGE"] != PublishedPodSubnet || e["WEAVE_NO_FASTDP"] != "1" {
				t.Errorf("weave env %v", e)
			}
		}
		t.Logf("%s: %d objects patched", name, len(objs))
	}
}

var testKubeDNSImages = KubeDNSImages{KubeDNS: "registry.k8s.io/dns/k8s-dns-kube-dns:1.22.28",
	DnsmasqNanny: "registry.k8s.io/dns/k8s-dns-dnsmasq-nanny:1.22.28", Sidecar: "registry.k8s.io/dns/k8s-dns-sidecar:1.22.28"}

func TestPublishedKubeDNSImages(t *testing.T) {
	got, err := PublishedKubeDNSImages()
	if err != nil {
		t.Fatal(err)
	}
	if got != testKubeDNSImages {
		t.Errorf("%+v", got)
	}
}

// kube-dns forwards everything outside the cluster to the lab upstream, and
// its pods are what the cluster's kube-dns Service selects.
func TestKubeDNSObjects(t *testing.T) {
	sa, cm, d, err := KubeDNSObjects(testKubeDNSImages, "10.96.200.7", 3)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Name != "kube-dns" || sa.Namespace != "kube-system" || d.Spec.Template.Spec.ServiceAccountName != "kube-dns" {
		t.Errorf("service account %s/%s, pods use %q", sa.Namespace, sa.Name, d.Spec.Template.Spec.ServiceAccountName)
	}
	var ups []string
	if err := json.Unmarshal([]byte(cm.Data["upstreamNameservers"]), &ups); err != nil || !slices.Equal(ups, []string{"10.96.200.7"}) {
		t.Errorf("upstreamNameservers %q (%v)", cm.Data["upstreamNameservers"], err)
	}
	if cm.Name != "kube-dns" || len(cm.Data) != 1 {
		t.Errorf("configmap %s %v", cm.Name, cm.Data)
	}
	if *d.Spec.Replicas != 3 || d.Name != "kube-dns" {
		t.Errorf("deployment %s replicas %d", d.Name, *d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match its pods %v", d.Spec.Selector, d.Spec.Template.Labels)
	}
	if d.Spec.Template.Labels["k8s-app"] != "kube-dns" || d.Spec.Selector.MatchLabels[kubeDNSServerLabel] != "kube-dns" {
		t.Errorf("pods %v: want k8s-app=kube-dns (the Service) and %s (never CoreDNS's pods)", d.Spec.Template.Labels, kubeDNSServerLabel)
	}
	spec := d.Spec.Template.Spec
	if spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("dnsPolicy %s", spec.DNSPolicy)
	}
	var names []string
	for _, c := range spec.Containers {
		names = append(names, c.Name+"="+c.Image)
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s pull policy %s", c.Name, c.ImagePullPolicy)
		}
	}
	if !slices.Equal(names, []string{"kubedns=" + testKubeDNSImages.KubeDNS, "dnsmasq=" + testKubeDNSImages.DnsmasqNanny, "sidecar=" + testKubeDNSImages.Sidecar}) {
		t.Errorf("containers %v", names)
	}
	if !slices.Contains(spec.Containers[0].Args, "--domain=cluster.local.") ||
		!slices.Contains(spec.Containers[1].Args, "--server=/cluster.local/127.0.0.1#10053") {
		t.Errorf("args %v %v", spec.Containers[0].Args, spec.Containers[1].Args)
	}
	for _, bad := range []struct {
		ip string
		n  int
	}{{"", 2}, {"labdns", 2}, {"10.96.0.9", 0}} {
		if _, _, _, err := KubeDNSObjects(testKubeDNSImages, bad.ip, bad.n); err == nil {
			t.Errorf("upstream %q, %d replicas accepted", bad.ip, bad.n)
		}
	}
}

// The Deployment is Kubernetes' own kube-dns addon (kube-dns.yaml.in of the
// k8s.io/kubernetes module, when the module cache has it) but for its images,
// their pull policy, the replica count, and the lab's label and annotation.
func TestKubeDNSMatchesKubernetesAddon(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	tmpl := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", "kubernetes@v1.36.1", "cluster", "addons", "dns", "kube-dns", "kube-dns.yaml.in")
	raw, err := os.ReadFile(tmpl)
	if err != nil {
		t.Skipf("Kubernetes' kube-dns addon is not in the module cache: %v", err)
	}
	text := strings.NewReplacer("dns_domain", "cluster.local", "dns_memory_limit", "170Mi", "dns_server", "10.96.0.10").Replace(string(raw))
	objs, err := pubDecode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pubFind(objs, "Deployment", "kube-dns").Object, want); err != nil {
		t.Fatal(err)
	}
	_, _, got, err := KubeDNSObjects(testKubeDNSImages, "10.96.200.7", 2)
	if err != nil {
		t.Fatal(err)
	}
	// What the lab changes on purpose.
	g := got.DeepCopy()
	g.Spec.Replicas = nil
	g.Spec.Selector = want.Spec.Selector
	g.Spec.Template.Labels = want.Spec.Template.Labels
	delete(g.Spec.Template.Annotations, pubUpstreamAnnotation)
	// kubeadm's CoreDNS tolerations (the control plane's too), as every
	// cluster server of the lab: with cell workers it goes there.
	if !reflect.DeepEqual(g.Spec.Template.Spec.Tolerations, serverTolerations()) {
		t.Errorf("tolerations %v, want %v", g.Spec.Template.Spec.Tolerations, serverTolerations())
	}
	g.Spec.Template.Spec.Tolerations = want.Spec.Template.Spec.Tolerations
	for i := range g.Spec.Template.Spec.Containers {
		g.Spec.Template.Spec.Containers[i].Image = want.Spec.Template.Spec.Containers[i].Image
		g.Spec.Template.Spec.Containers[i].ImagePullPolicy = ""
	}
	g.Labels = nil
	w := want.DeepCopy()
	w.Labels, w.Annotations = nil, nil
	if w.Spec.Strategy.Type == "" {
		w.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType // the API server's default
	}
	if !reflect.DeepEqual(g.Spec, w.Spec) {
		gb, _ := json.MarshalIndent(g.Spec, "", " ")
		wb, _ := json.MarshalIndent(w.Spec, "", " ")
		t.Errorf("kube-dns Deployment differs from %s:\nlab:\n%s\nkubernetes:\n%s", tmpl, gb, wb)
	}
}

// Without its published images, KubeDNS fails with the very reason `labrun
// plan` gives, before touching the cluster.
func TestKubeDNSWithoutImagesGivesHostReason(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("LABRUN_CACHE", cache)
	err := KubeDNS(context.Background(), Env{}, 2)
	want := hostcheck.NotRun(hostcheck.Kernel{}, scenario.Cluster{DNS: scenario.DNS{Server: "kube-dns"}}, hostcheck.InCache(cache))
	if want == "" || err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %q", err, want)
	}
	for _, s := range []string{"dns kube-dns: images registry.k8s.io/dns/k8s-dns-kube-dns:1.22.28@sha256:df85f157",
		"k8s.io/dns is refused by the Go module proxy", "labrun images pull kube-dns kube-dns-dnsmasq-nanny kube-dns-sidecar"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("reason lacks %q", s)
		}
	}
}

// The switch: kube-dns is created and ready before CoreDNS goes to 0; a
// second run updates in place.
func TestKubeDNSSwitch(t *testing.T) {
	two := int32(2)
	cs := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"k8s-app": "kube-dns"}, ClusterIP: "10.96.0.10"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
			Spec: appsv1.DeploymentSpec{Replicas: &two}},
	)
	var steps []string
	sw := kubeDNSSwitch{cs: cs,
		waitReady: func(ctx context.Context, name string) error {
			c, _ := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			steps = append(steps, "ready "+name+" (coredns "+itoa(*c.Spec.Replicas)+")")
			return nil
		},
		waitGone: func(_ context.Context, name string) error { steps = append(steps, "gone "+name); return nil },
	}
	for run := 1; run <= 2; run++ {
		steps = nil
		sa, cm, d, err := KubeDNSObjects(testKubeDNSImages, "10.96.200."+itoa(int32(run)), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.run(context.Background(), sa, cm, d); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if !slices.Equal(steps, []string{"ready kube-dns (coredns 2)", "gone coredns"}) && run == 1 {
			t.Errorf("run %d: steps %v", run, steps)
		}
		c, _ := cs.AppsV1().Deployments("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
		if *c.Spec.Replicas != 0 {
			t.Errorf("run %d: coredns replicas %d", run, *c.Spec.Replicas)
		}
		got, err := cs.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
		if err != nil || got.Data["upstreamNameservers"] != `["10.96.200.`+itoa(int32(run))+`"]` {
			t.Errorf("run %d: configmap %v, %v", run, got.Data, err)
		}
		if _, err := cs.CoreV1().ServiceAccounts("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{}); err != nil {
			t.Errorf("run %d: service account: %v", run, err)
		}
	}
	// A Service that would not select kube-dns's pods is refused.
	svc, _ := cs.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	svc.Spec.Selector = map[string]string{"app": "coredns"}
	if _, err := cs.CoreV1().Services("kube-system").Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa, cm, d, _ := KubeDNSObjects(testKubeDNSImages, "10.96.200.9", 2)
	if err := sw.run(context.Background(), sa, cm, d); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("wrong selector: %v", err)
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// Server-side apply of the patched published manifests on a real cluster
// (LABRUN_TEST_KUBECONFIG, and the manifests in LABRUN_MANIFESTS): every
// object is created, a second apply updates in place, and what the API
// server holds has the lab's changes. The pods themselves cannot start here
// (no published images): only the objects are checked.
func TestIntegrationApplyPublishedManifests(t *testing.T) {
	kubeconfig, dir := os.Getenv("LABRUN_TEST_KUBECONFIG"), os.Getenv(images.ManifestsEnv)
	if testing.Short() || kubeconfig == "" || dir == "" {
		t.Skip("needs a cluster (LABRUN_TEST_KUBECONFIG) and the published manifests (" + images.ManifestsEnv + "=DIR)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"calico", "weave"} {
		var n *publishedNetwork
		if name == "calico" {
			p, _ := Calico(nil)
			n = p.(*publishedNetwork)
		} else {
			p, _ := Weave(nil)
			n = p.(*publishedNetwork)
		}
		objs, pub, err := n.manifest(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := n.patch(objs, pub, &labKernel); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ { // create, then update in place
			if err := pubApply(ctx, cfg, objs); err != nil {
				t.Fatalf("%s apply %d: %v", name, i+1, err)
			}
		}
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, n.daemonSets[0], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var c corev1.Container
		for _, x := range ds.Spec.Template.Spec.Containers {
			if x.Name == map[string]string{"calico": "calico-node", "weave": "weave"}[name] {
				c = x
			}
		}
		e := env(c)
		switch name {
		case "calico":
			if e["CALICO_IPV4POOL_VXLAN"] != "Always" || e["CALICO_IPV4POOL_CIDR"] != PublishedPodSubnet || c.Image != "quay.io/calico/node:v3.31.3" {
				t.Errorf("calico-node in the cluster: %s %v", c.Image, e)
			}
			cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "calico-config", metav1.GetOptions{})
			if err != nil || cm.Data["calico_backend"] != "vxlan" {
				t.Errorf("calico-config: %v, %v", cm.Data, err)
			}
		case "weave":
			if e["IPALLOC_RANGE"] != PublishedPodSubnet || e["WEAVE_NO_FASTDP"] != "1" || ds.Annotations[weaveModeAnnotation] != "sleeve" {
				t.Errorf("weave in the cluster: %v %v", e, ds.Annotations)
			}
		}
		t.Logf("%s: %d objects applied twice; DaemonSet %s generation %d", name, len(objs), ds.Name, ds.Generation)
		// Leave the cluster's own network alone: remove the DaemonSets.
		for _, d := range n.daemonSets {
			_ = cs.AppsV1().DaemonSets("kube-system").Delete(ctx, d, metav1.DeleteOptions{})
		}
		for _, d := range n.deployments {
			_ = cs.AppsV1().Deployments("kube-system").Delete(ctx, d, metav1.DeleteOptions{})
		}
	}
}
