package addons

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/hostcheck"
	"labrun.dev/labrun/pkg/images"
	"labrun.dev/labrun/pkg/scenario"
)

// PublishedPodSubnet is the pod CIDR of the published pod networks: kind's
// own default, given to kind (kube-proxy's clusterCIDR, the node CIDRs) and
// written into the network's own setting (Calico's CALICO_IPV4POOL_CIDR,
// Weave's IPALLOC_RANGE) so that both agree. Calico's manifest default
// (192.168.0.0/16) and Weave's (10.32.0.0/12) are not used.
const PublishedPodSubnet = "10.244.0.0/16"

const (
	pubNetworkTimeout   = 4 * time.Minute
	weaveModeAnnotation = "labrun.dev/weave-mode"
)

// publishedNetwork is a pod network applied from its project's published
// manifest (images/manifests.yaml), patched for the lab, with its published
// images (images/published.yaml) loaded into the nodes from the lab's store.
type publishedNetwork struct {
	name   string // "calico" | "weave": the scenario value and the manifest's name
	subnet string
	cache  string // the artifact cache ("" = images.DefaultCache())
	// probe finds the kernel's features; nil means hostcheck.Probe.
	probe func(context.Context) (hostcheck.Kernel, error)
	// patch makes the manifest's objects the lab's, for a kernel k (probed,
	// or nil when the probe failed).
	patch func(objs []*unstructured.Unstructured, pub []images.Published, k *hostcheck.Kernel) error
	// daemonSets and deployments are waited ready, in kube-system.
	daemonSets, deployments []string
	// mode is the data path the network is set up in.
	mode string
}

// Mode is the data path the network was set up in, once Install has patched
// its manifest: Weave's "sleeve (kernel lacks openvswitch: …)" or "fastdp";
// Calico's "VXLAN". The runner can find it with an interface{ Mode() string }
// assertion on the cluster.PodNetwork, to record which mode ran.
func (n *publishedNetwork) Mode() string { return n.mode }

func (n *publishedNetwork) Name() string      { return n.name }
func (n *publishedNetwork) PodSubnet() string { return n.subnet }
func (n *publishedNetwork) axis() string      { return "podNetwork=" + n.name }

// Calico is the Calico pod network v3.31.3 from its published manifest and
// images, in VXLAN mode: the lab's kernels have no IPIP (FACTS.md), the
// manifest's default. The changes are those of Calico's own
// manifests/calico-vxlan.yaml (backend vxlan, IPIP off, BIRD's probes
// removed) with VXLAN Always instead of CrossSubnet, since kind's nodes share
// one subnet and CrossSubnet would not encapsulate at all.
func Calico(plan *images.Plan) (cluster.PodNetwork, error) {
	return &publishedNetwork{
		name: "calico", subnet: PublishedPodSubnet, mode: "VXLAN",
		patch: func(objs []*unstructured.Unstructured, pub []images.Published, _ *hostcheck.Kernel) error {
			return pubPatchCalico(objs, pub, PublishedPodSubnet)
		},
		daemonSets:  []string{"calico-node"},
		deployments: []string{"calico-kube-controllers"},
	}, nil
}

// Weave is Weave Net 2.8.1 from its published manifest and images. Its fast
// data path needs the kernel's openvswitch datapath; without it (the lab's
// kernels) it runs in sleeve mode, set explicitly (WEAVE_NO_FASTDP) so the
// mode that runs is the one recorded (the DaemonSet's labrun.dev/weave-mode
// annotation, and Mode()).
func Weave(plan *images.Plan) (cluster.PodNetwork, error) {
	n := &publishedNetwork{name: "weave", subnet: PublishedPodSubnet, daemonSets: []string{"weave-net"}}
	n.patch = func(objs []*unstructured.Unstructured, pub []images.Published, k *hostcheck.Kernel) error {
		n.mode = "auto: fastdp, else sleeve, as Weave finds (the kernel probe failed)"
		if k != nil {
			n.mode = hostcheck.WeaveMode(*k)
		}
		return pubPatchWeave(objs, pub, PublishedPodSubnet, n.mode)
	}
	return n, nil
}

// Install loads the network's published images into the nodes, gets its
// manifest (checked against its pin), patches it and applies it, then waits
// for its DaemonSets and Deployments.
func (n *publishedNetwork) Install(ctx context.Context, c *cluster.Cluster) error {
	cache := n.cache
	if cache == "" {
		cache = images.DefaultCache()
	}
	// The host's reasons first, exactly as `labrun plan` gives them: the
	// kernel (Calico: VXLAN) and the published images in the store.
	probe := n.probe
	if probe == nil {
		probe = hostcheck.Probe
	}
	var kernel *hostcheck.Kernel
	if k, err := probe(ctx); err == nil {
		kernel = &k
		if why := hostcheck.NotRun(k, scenario.Cluster{PodNetwork: n.name}, hostcheck.InCache(cache)); why != "" {
			return errors.New(why)
		}
	}
	records, err := images.StoredFor(cache, n.axis())
	if err != nil {
		return err
	}
	// The manifest before the images: it fails faster, and nothing is
	// loaded into the nodes for a manifest that would be refused.
	objs, pub, err := n.manifest(ctx, cache)
	if err != nil {
		return err
	}
	if err := n.patch(objs, pub, kernel); err != nil {
		return err
	}
	for _, r := range records {
		if err := c.LoadImage(ctx, r.Tarball); err != nil {
			return err
		}
	}
	if err := pubApply(ctx, c.Rest, objs); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	cs := c.Client
	for _, ds := range n.daemonSets {
		if err := cluster.WaitDaemonSet(ctx, cs, namespace, ds, len(c.Nodes), pubNetworkTimeout); err != nil {
			return err
		}
	}
	for _, d := range n.deployments {
		if err := cluster.WaitDeployment(ctx, cs, namespace, d, pubNetworkTimeout); err != nil {
			return err
		}
	}
	return nil
}

// manifest gets the network's manifest (images.GetManifest: a user's file,
// the cache, or its pinned URL) and decodes it, with the published images
// the network needs.
func (n *publishedNetwork) manifest(ctx context.Context, cache string) ([]*unstructured.Unstructured, []images.Published, error) {
	all, err := images.LoadManifests()
	if err != nil {
		return nil, nil, err
	}
	m, err := images.FindManifest(all, n.name)
	if err != nil {
		return nil, nil, err
	}
	f, err := images.GetManifest(ctx, m, images.ManifestOptions{Cache: cache})
	if err != nil {
		return nil, nil, err
	}
	objs, err := pubDecode(f.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s %s from %s: %w", m.Name, m.Version, f.From, err)
	}
	pub, err := pubImagesFor(n.axis())
	if err != nil {
		return nil, nil, err
	}
	return objs, pub, nil
}

// pubImagesFor lists the published images an axis value needs.
func pubImagesFor(axis string) ([]images.Published, error) {
	all, err := images.LoadPublished()
	if err != nil {
		return nil, err
	}
	var out []images.Published
	for _, p := range all {
		if p.Needed(axis) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("images/published.yaml lists no image for %s", axis)
	}
	return out, nil
}

// pubDecode reads a multi-document YAML (or JSON) manifest into
// objects, in order, expanding a v1 List (Weave's manifest is one) and
// skipping empty documents.
func pubDecode(b []byte) ([]*unstructured.Unstructured, error) {
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(doc) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: doc}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d: no kind or apiVersion", i+1)
		}
		if u.IsList() {
			err := u.EachListItem(func(o runtime.Object) error {
				item, ok := o.(*unstructured.Unstructured)
				if !ok || item.GetKind() == "" {
					return fmt.Errorf("document %d: a List item without a kind", i+1)
				}
				out = append(out, item)
				return nil
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no objects")
	}
	return out, nil
}

// pubFind returns the object of that kind and name (nil if none).
func pubFind(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// pubEditPodSpec converts a DaemonSet or Deployment to its typed form, lets
// edit change its metadata and pod template, and writes it back.
func pubEditPodSpec(u *unstructured.Unstructured, edit func(meta *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) error) error {
	var obj interface {
		runtime.Object
		metav1.Object
	}
	var tmpl *corev1.PodTemplateSpec
	var objMeta *metav1.ObjectMeta
	switch u.GetKind() {
	case "DaemonSet":
		ds := &appsv1.DaemonSet{}
		obj, tmpl, objMeta = ds, &ds.Spec.Template, &ds.ObjectMeta
	case "Deployment":
		d := &appsv1.Deployment{}
		obj, tmpl, objMeta = d, &d.Spec.Template, &d.ObjectMeta
	default:
		return fmt.Errorf("%s %s: not a DaemonSet or Deployment", u.GetKind(), u.GetName())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
		return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := edit(objMeta, tmpl); err != nil {
		return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	back, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	// The typed round trip adds an empty status and a null creation time:
	// neither belongs in what is applied.
	delete(back, "status")
	unstructured.RemoveNestedField(back, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(back, "spec", "template", "metadata", "creationTimestamp")
	u.Object = back
	return nil
}

// pubPinImages points every container of a pod template at the published image
// of the same repository (its pinned repo:tag, loaded into the nodes), with
// pull policy IfNotPresent. An image the published list does not have, or
// has at another tag, is an error: the manifest and the images would not be
// one release.
func pubPinImages(tmpl *corev1.PodTemplateSpec, pub []images.Published) error {
	pin := func(c *corev1.Container) error {
		ref, err := name.NewTag(c.Image)
		if err != nil {
			return fmt.Errorf("container %s: image %q: %w", c.Name, c.Image, err)
		}
		for _, p := range pub {
			want, err := name.NewTag(p.Ref)
			if err != nil {
				return err
			}
			if want.Context().Name() != ref.Context().Name() {
				continue
			}
			if want.TagStr() != ref.TagStr() {
				return fmt.Errorf("container %s: image %s, but images/published.yaml pins %s (another release)", c.Name, c.Image, p.Ref)
			}
			c.Image, c.ImagePullPolicy = p.Ref, corev1.PullIfNotPresent
			return nil
		}
		return fmt.Errorf("container %s: image %s is not in images/published.yaml", c.Name, c.Image)
	}
	for i := range tmpl.Spec.InitContainers {
		if err := pin(&tmpl.Spec.InitContainers[i]); err != nil {
			return err
		}
	}
	for i := range tmpl.Spec.Containers {
		if err := pin(&tmpl.Spec.Containers[i]); err != nil {
			return err
		}
	}
	return nil
}

// pubContainer returns the pod template's container named name.
func pubContainer(tmpl *corev1.PodTemplateSpec, name string) (*corev1.Container, error) {
	for i := range tmpl.Spec.Containers {
		if tmpl.Spec.Containers[i].Name == name {
			return &tmpl.Spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("no container %q", name)
}

// pubSetEnv sets an environment variable to a value (replacing one taken from
// elsewhere), appending it when absent.
func pubSetEnv(c *corev1.Container, key, value string) {
	for i := range c.Env {
		if c.Env[i].Name == key {
			c.Env[i] = corev1.EnvVar{Name: key, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: key, Value: value})
}

// pubPatchCalico makes Calico's manifest the lab's: VXLAN instead of IPIP (the
// ConfigMap's calico_backend "vxlan", so BIRD does not run, and its liveness
// and readiness checks dropped), the IPv4 pool in the pod subnet kind was
// given, and every image the pinned published one.
func pubPatchCalico(objs []*unstructured.Unstructured, pub []images.Published, subnet string) error {
	cfg := pubFind(objs, "ConfigMap", "calico-config")
	if cfg == nil {
		return errors.New("calico manifest: no ConfigMap calico-config")
	}
	if _, ok, _ := unstructured.NestedString(cfg.Object, "data", "calico_backend"); !ok {
		return errors.New("calico manifest: ConfigMap calico-config has no data.calico_backend")
	}
	if err := unstructured.SetNestedField(cfg.Object, "vxlan", "data", "calico_backend"); err != nil {
		return err
	}
	node := pubFind(objs, "DaemonSet", "calico-node")
	if node == nil {
		return errors.New("calico manifest: no DaemonSet calico-node")
	}
	err := pubEditPodSpec(node, func(_ *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) error {
		c, err := pubContainer(tmpl, "calico-node")
		if err != nil {
			return err
		}
		for _, key := range []string{"CALICO_IPV4POOL_IPIP", "CALICO_IPV4POOL_VXLAN"} {
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == key }) {
				return fmt.Errorf("container calico-node has no %s: not the manifest's shape", key)
			}
		}
		pubSetEnv(c, "CALICO_IPV4POOL_IPIP", "Never")
		pubSetEnv(c, "CALICO_IPV4POOL_VXLAN", "Always")
		pubSetEnv(c, "CALICO_IPV6POOL_VXLAN", "Never")
		pubSetEnv(c, "CALICO_IPV4POOL_CIDR", subnet)
		// BIRD does not run with the vxlan backend: its checks would fail.
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p != nil && p.Exec != nil {
				p.Exec.Command = slices.DeleteFunc(p.Exec.Command, func(a string) bool { return a == "-bird-live" || a == "-bird-ready" })
			}
		}
		return pubPinImages(tmpl, pub)
	})
	if err != nil {
		return fmt.Errorf("calico manifest: %w", err)
	}
	return pubPinAll(objs, pub, "calico", node)
}

// pubPinAll pins the images of every DaemonSet and Deployment but done.
func pubPinAll(objs []*unstructured.Unstructured, pub []images.Published, what string, done ...*unstructured.Unstructured) error {
	for _, o := range objs {
		if (o.GetKind() != "DaemonSet" && o.GetKind() != "Deployment") || slices.Contains(done, o) {
			continue
		}
		err := pubEditPodSpec(o, func(_ *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) error { return pubPinImages(tmpl, pub) })
		if err != nil {
			return fmt.Errorf("%s manifest: %w", what, err)
		}
	}
	return nil
}

// pubPatchWeave makes Weave Net's manifest the lab's: its IP allocation range
// the pod subnet kind was given, its data path the one the kernel allows
// (mode from hostcheck.WeaveMode: sleeve is forced with WEAVE_NO_FASTDP, so
// it is what runs, and recorded on the DaemonSet), and its images pinned.
func pubPatchWeave(objs []*unstructured.Unstructured, pub []images.Published, subnet, mode string) error {
	ds := pubFind(objs, "DaemonSet", "weave-net")
	if ds == nil {
		return errors.New("weave manifest: no DaemonSet weave-net")
	}
	err := pubEditPodSpec(ds, func(m *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec) error {
		c, err := pubContainer(tmpl, "weave")
		if err != nil {
			return err
		}
		pubSetEnv(c, "IPALLOC_RANGE", subnet)
		if strings.HasPrefix(mode, "sleeve") {
			pubSetEnv(c, "WEAVE_NO_FASTDP", "1")
		}
		word, _, _ := strings.Cut(mode, " ")
		word = strings.TrimSuffix(word, ":")
		metav1.SetMetaDataAnnotation(m, weaveModeAnnotation, word)
		metav1.SetMetaDataAnnotation(&tmpl.ObjectMeta, weaveModeAnnotation, word)
		return pubPinImages(tmpl, pub)
	})
	if err != nil {
		return fmt.Errorf("weave manifest: %w", err)
	}
	return pubPinAll(objs, pub, "weave", ds)
}

// pubApply creates or updates each object, in the manifest's order, by
// server-side apply. A kind the API server does not know yet (a custom
// resource whose definition was just applied) is retried until it is served.
func pubApply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		var m *meta.RESTMapping
		err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(context.Context) (bool, error) {
			var err error
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if meta.IsNoMatchError(err) {
				mapper.Reset()
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := o.GetNamespace()
			if ns == "" {
				ns = metav1.NamespaceDefault
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := apply(ctx, ri, o); err != nil {
			return err
		}
	}
	return nil
}

// kube-dns, from its published images.

const (
	// KubeDNSAxis is the scenario value kube-dns serves.
	KubeDNSAxis = "dns=kube-dns"
	// kubeDNSDomain is the cluster domain of the lab's kind clusters.
	kubeDNSDomain = "cluster.local"
	// kubeDNSMemoryLimit is kube-up's default dns_memory_limit.
	kubeDNSMemoryLimit = "170Mi"
	// kubeDNSServerLabel marks the lab's kube-dns pods, so that its
	// Deployment never selects CoreDNS's (both carry k8s-app=kube-dns, the
	// label the kube-dns Service selects).
	kubeDNSServerLabel    = "labrun.dev/dns-server"
	pubUpstreamAnnotation = "labrun.dev/upstream"
)

// KubeDNSImages are the repo:tag of kube-dns's three containers, as
// images/published.yaml pins them (loaded into the nodes by that name).
type KubeDNSImages struct{ KubeDNS, DnsmasqNanny, Sidecar string }

// PublishedKubeDNSImages reads them from images/published.yaml.
func PublishedKubeDNSImages() (KubeDNSImages, error) {
	all, err := images.LoadPublished()
	if err != nil {
		return KubeDNSImages{}, err
	}
	got, err := images.FindPublished(all, "kube-dns", "kube-dns-dnsmasq-nanny", "kube-dns-sidecar")
	if err != nil {
		return KubeDNSImages{}, err
	}
	return KubeDNSImages{KubeDNS: got[0].Ref, DnsmasqNanny: got[1].Ref, Sidecar: got[2].Ref}, nil
}

// KubeDNSObjects are kube-dns's ServiceAccount, ConfigMap and Deployment as
// Kubernetes' cluster/addons/dns/kube-dns/kube-dns.yaml.in makes them
// (domain cluster.local, memory limit 170Mi), with replicas pods, its
// images the published ones, and every name outside the cluster forwarded
// to the lab upstream (upstreamNameservers; dnsmasq-nanny then starts
// dnsmasq with --no-resolv), tolerating the control plane as every cluster
// server of the lab does (serverTolerations). The Service is the cluster's own kube-dns
// Service (selector k8s-app=kube-dns), which these pods match. The
// ServiceAccount's rights come from the API server's bootstrap binding
// system:kube-dns.
func KubeDNSObjects(img KubeDNSImages, upstream string, replicas int) (*corev1.ServiceAccount, *corev1.ConfigMap, *appsv1.Deployment, error) {
	if net.ParseIP(upstream) == nil {
		return nil, nil, nil, fmt.Errorf("kube-dns: lab upstream %q is not an IP address", upstream)
	}
	if replicas < 1 {
		return nil, nil, nil, fmt.Errorf("kube-dns: %d replicas; valid: 1 or more", replicas)
	}
	const name = "kube-dns"
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
		Labels: map[string]string{"kubernetes.io/cluster-service": "true"}}}
	upstreams, err := json.Marshal([]string{upstream})
	if err != nil {
		return nil, nil, nil, err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string]string{"upstreamNameservers": string(upstreams)},
	}
	selector := map[string]string{"k8s-app": name, kubeDNSServerLabel: name}
	r := int32(replicas)
	maxSurge, maxUnavailable := intstr.FromString("10%"), intstr.FromInt32(0)
	id, group := int64(1001), int64(1001)
	nobody := int64(65534)
	no, yes := false, true
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
			InitialDelaySeconds: 60, TimeoutSeconds: 5, SuccessThreshold: 1, FailureThreshold: 5,
		}
	}
	restricted := &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsUser: &id, RunAsGroup: &group}
	srvDomain := "kubernetes.default.svc." + kubeDNSDomain
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{"k8s-app": name, "kubernetes.io/cluster-service": "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &r,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}},
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: selector, Annotations: map[string]string{
					"prometheus.io/port": "10054", "prometheus.io/scrape": "true", pubUpstreamAnnotation: upstream}},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-cluster-critical",
					SecurityContext: &corev1.PodSecurityContext{
						SeccompProfile:     &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						SupplementalGroups: []int64{nobody}, FSGroup: &nobody,
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
									{Key: "k8s-app", Operator: metav1.LabelSelectorOpIn, Values: []string{name}}}},
								TopologyKey: "kubernetes.io/hostname",
							},
						}},
					}},
					Tolerations: serverTolerations(),
					Volumes: []corev1.Volume{{Name: "kube-dns-config", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: &yes}}}},
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					Containers: []corev1.Container{
						{
							Name:            "kubedns",
							Image:           img.KubeDNS,
							ImagePullPolicy: corev1.PullIfNotPresent,
							Resources: corev1.ResourceRequirements{
								Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(kubeDNSMemoryLimit)},
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
							},
							LivenessProbe: probe("/healthcheck/kubedns", 10054),
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readiness", Port: intstr.FromInt32(8081), Scheme: corev1.URISchemeHTTP}},
								InitialDelaySeconds: 3, TimeoutSeconds: 5,
							},
							Args: []string{"--domain=" + kubeDNSDomain + ".", "--dns-port=10053", "--config-dir=/kube-dns-config", "--v=2"},
							Env:  []corev1.EnvVar{{Name: "PROMETHEUS_PORT", Value: "10055"}},
							Ports: []corev1.ContainerPort{
								{Name: "dns-local", ContainerPort: 10053, Protocol: corev1.ProtocolUDP},
								{Name: "dns-tcp-local", ContainerPort: 10053, Protocol: corev1.ProtocolTCP},
								{Name: "metrics", ContainerPort: 10055, Protocol: corev1.ProtocolTCP},
							},
							VolumeMounts:    []corev1.VolumeMount{{Name: "kube-dns-config", MountPath: "/kube-dns-config"}},
							SecurityContext: restricted,
						},
						{
							Name:            "dnsmasq",
							Image:           img.DnsmasqNanny,
							ImagePullPolicy: corev1.PullIfNotPresent,
							LivenessProbe:   probe("/healthcheck/dnsmasq", 10054),
							Args: []string{"-v=2", "-configDir=/etc/k8s/dns/dnsmasq-nanny", "-restartDnsmasq=true", "--",
								"-k", "--cache-size=1000", "--no-negcache", "--dns-loop-detect", "--log-facility=-",
								"--server=/" + kubeDNSDomain + "/127.0.0.1#10053",
								"--server=/in-addr.arpa/127.0.0.1#10053",
								"--server=/ip6.arpa/127.0.0.1#10053"},
							Ports: []corev1.ContainerPort{
								{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
								{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
							},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceCPU: resource.MustParse("150m"), corev1.ResourceMemory: resource.MustParse("20Mi")}},
							VolumeMounts: []corev1.VolumeMount{{Name: "kube-dns-config", MountPath: "/etc/k8s/dns/dnsmasq-nanny"}},
							SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
								Drop: []corev1.Capability{"all"}, Add: []corev1.Capability{"NET_BIND_SERVICE", "SETGID"}}},
						},
						{
							Name:            "sidecar",
							Image:           img.Sidecar,
							ImagePullPolicy: corev1.PullIfNotPresent,
							LivenessProbe:   probe("/metrics", 10054),
							Args: []string{"--v=2",
								"--probe=kubedns,127.0.0.1:10053," + srvDomain + ",5,SRV",
								"--probe=dnsmasq,127.0.0.1:53," + srvDomain + ",5,SRV"},
							Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 10054, Protocol: corev1.ProtocolTCP}},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceMemory: resource.MustParse("20Mi"), corev1.ResourceCPU: resource.MustParse("10m")}},
							SecurityContext: restricted,
						},
					},
					DNSPolicy:          corev1.DNSDefault, // kube-dns does not use the cluster DNS
					ServiceAccountName: name,
				},
			},
		},
	}
	return sa, cm, d, nil
}

// KubeDNS replaces CoreDNS with kube-dns from its published images: the
// images are loaded into the nodes from the lab's store (if the store lacks
// them, the error is the reason `labrun plan` gives), kube-dns is deployed
// forwarding to the lab upstream, and once it is ready CoreDNS is scaled to
// 0, so the cluster's kube-dns Service selects only kube-dns's pods.
func KubeDNS(ctx context.Context, env Env, replicas int) error {
	cache := images.DefaultCache()
	if why := hostcheck.NotRun(hostcheck.Kernel{}, scenario.Cluster{DNS: scenario.DNS{Server: "kube-dns"}}, hostcheck.InCache(cache)); why != "" {
		return errors.New(why)
	}
	records, err := images.StoredFor(cache, KubeDNSAxis)
	if err != nil {
		return err
	}
	start := time.Now()
	for _, r := range records {
		if err := env.Cluster.LoadImage(ctx, r.Tarball); err != nil {
			return err
		}
	}
	pubProgress(env.Progress, "kube-dns: %d published images loaded (%s)", len(records), time.Since(start).Round(100*time.Millisecond))
	img, err := PublishedKubeDNSImages()
	if err != nil {
		return err
	}
	svc, err := env.Cluster.Client.CoreV1().Services(namespace).Get(ctx, UpstreamName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube-dns: the lab upstream Service %s/%s: %w", namespace, UpstreamName, err)
	}
	sa, cm, d, err := KubeDNSObjects(img, svc.Spec.ClusterIP, replicas)
	if err != nil {
		return err
	}
	sw := kubeDNSSwitch{cs: env.Cluster.Client, progress: env.Progress,
		waitReady: func(ctx context.Context, name string) error {
			return cluster.WaitDeployment(ctx, env.Cluster.Client, namespace, name, timeout)
		},
		// Scaled to 0, a Deployment is "ready" when none of its pods is left.
		waitGone: func(ctx context.Context, name string) error {
			return cluster.WaitDeployment(ctx, env.Cluster.Client, namespace, name, timeout)
		}}
	return sw.run(ctx, sa, cm, d)
}

// kubeDNSSwitch deploys kube-dns and retires CoreDNS; the waits are
// replaceable for tests (a fake clientset runs no pods).
type kubeDNSSwitch struct {
	cs                  kubernetes.Interface
	progress            io.Writer
	waitReady, waitGone func(ctx context.Context, deployment string) error
}

func (s kubeDNSSwitch) run(ctx context.Context, sa *corev1.ServiceAccount, cm *corev1.ConfigMap, d *appsv1.Deployment) error {
	svc, err := s.cs.CoreV1().Services(namespace).Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube-dns: the cluster's kube-dns Service: %w", err)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		return fmt.Errorf("kube-dns: Service kube-system/kube-dns selects %v, which kube-dns's pods (%v) do not match",
			svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if _, err := apply(ctx, s.cs.CoreV1().ServiceAccounts(namespace), sa); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	if _, err := apply(ctx, s.cs.CoreV1().ConfigMaps(namespace), cm); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	if _, err := apply(ctx, s.cs.AppsV1().Deployments(namespace), d); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	if err := s.waitReady(ctx, d.Name); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	pubProgress(s.progress, "kube-dns: %d replicas ready, forwarding to the lab upstream %s", *d.Spec.Replicas, d.Spec.Template.Annotations[pubUpstreamAnnotation])
	deploys := s.cs.AppsV1().Deployments(namespace)
	coredns, err := deploys.Get(ctx, "coredns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube-dns: coredns deployment: %w", err)
	}
	if coredns.Spec.Replicas == nil || *coredns.Spec.Replicas != 0 {
		zero := int32(0)
		coredns.Spec.Replicas = &zero
		if _, err := deploys.Update(ctx, coredns, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("kube-dns: scale coredns to 0: %w", err)
		}
	}
	if err := s.waitGone(ctx, "coredns"); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	pubProgress(s.progress, "kube-dns: CoreDNS scaled to 0; Service kube-system/kube-dns selects kube-dns only")
	return nil
}

func pubProgress(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}
