package addons

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/images"
)

const testImage = "docker.io/labrun/kube-router:v2.1.0"

func TestKubeRouterCNIConfList(t *testing.T) {
	b, err := kubeRouterCNIConfList(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read it back as the CNI plugins would: generic JSON.
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, b)
	}
	if conf.CNIVersion == "" || conf.Name == "" || len(conf.Plugins) != 1 {
		t.Fatalf("conflist: version %q, name %q, %d plugins; want both and one plugin:\n%s", conf.CNIVersion, conf.Name, len(conf.Plugins), b)
	}
	p := conf.Plugins[0]
	if p["type"] != "bridge" || p["bridge"] != "kube-bridge" || p["isDefaultGateway"] != true || p["hairpinMode"] != true {
		t.Errorf("plugin %v: want the bridge plugin on kube-bridge, default gateway, hairpin mode", p)
	}
	ipam, _ := p["ipam"].(map[string]any)
	if ipam["type"] != "host-local" {
		t.Errorf("ipam %v: want host-local", ipam)
	}
	// The template (for a node that joins later) has no subnet: kube-router
	// inserts the node's pod CIDR itself.
	if _, ok := ipam["subnet"]; ok {
		t.Errorf("ipam has a subnet: %v", ipam)
	}
	if _, ok := ipam["ranges"]; ok {
		t.Errorf("template ipam has ranges: %v", ipam)
	}

	// A node's own: host-local's ranges, one range set per pod CIDR, in the
	// form kube-router itself writes (so it finds its CIDR already there).
	b, err = kubeRouterCNIConfList([]string{"10.244.1.0/24", "fd00:10:244:1::/64"})
	if err != nil {
		t.Fatal(err)
	}
	var node struct {
		Plugins []struct {
			IPAM struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &node); err != nil {
		t.Fatal(err)
	}
	want := [][]map[string]string{{{"subnet": "10.244.1.0/24"}}, {{"subnet": "fd00:10:244:1::/64"}}}
	if got := node.Plugins[0].IPAM.Ranges; !reflect.DeepEqual(got, want) {
		t.Errorf("ranges %v, want %v", got, want)
	}
}

func TestKubeRouterObjects(t *testing.T) {
	o, err := newKubeRouterObjects(testImage, map[string][]string{"w1": {"10.244.1.0/24"}, "w2": {"10.244.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	ds := o.DaemonSet
	if ds.Namespace != "kube-system" || ds.Name != "kube-router" {
		t.Errorf("daemon set %s/%s", ds.Namespace, ds.Name)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.ServiceAccountName != o.ServiceAccount.Name || spec.PriorityClassName != "system-node-critical" {
		t.Errorf("pod: hostNetwork %v, service account %q, priority %q", spec.HostNetwork, spec.ServiceAccountName, spec.PriorityClassName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("tolerations %v: want one that tolerates every taint", spec.Tolerations)
	}
	sel, _ := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the template's labels %v", ds.Spec.Selector, ds.Spec.Template.Labels)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 1 {
		t.Fatalf("%d containers, %d init containers; want 1 and 1", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	for _, cc := range []corev1.Container{c, spec.InitContainers[0]} {
		if cc.Image != testImage || cc.ImagePullPolicy != corev1.PullNever {
			t.Errorf("container %s: image %s, pull %s; want %s, Never (the lab has no registry)", cc.Name, cc.Image, cc.ImagePullPolicy, testImage)
		}
	}
	for _, a := range []string{"--run-router=true", "--run-firewall=true", "--run-service-proxy=false", "--bgp-graceful-restart=true"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	for _, a := range c.Args {
		// kube-proxy is the service proxy, and the API server is found
		// through the in-cluster configuration.
		if strings.HasPrefix(a, "--master") || strings.HasPrefix(a, "--kubeconfig") {
			t.Errorf("arg %s: kube-router should use its in-cluster configuration", a)
		}
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("kube-router is not privileged: it programs routes, iptables and ipsets")
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME %+v: want the downward API's spec.nodeName", e)
	}
	if e := env["KUBE_ROUTER_CNI_CONF_FILE"]; e.Value != KubeRouterCNIConf {
		t.Errorf("KUBE_ROUTER_CNI_CONF_FILE %q, want %s", e.Value, KubeRouterCNIConf)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.IntValue() != 20244 {
		t.Errorf("readiness probe %+v: want GET /healthz on 20244", p)
	}

	// Every mount names a volume, and the node paths kube-router needs are there.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	hostPaths := map[string]string{}
	for _, cc := range append([]corev1.Container{c}, spec.InitContainers...) {
		for _, m := range cc.VolumeMounts {
			v, ok := volumes[m.Name]
			if !ok {
				t.Errorf("container %s mounts %s: no such volume", cc.Name, m.Name)
				continue
			}
			if v.HostPath != nil {
				hostPaths[cc.Name+":"+m.MountPath] = v.HostPath.Path
			}
			if v.ConfigMap != nil && v.ConfigMap.Name != o.ConfigMap.Name {
				t.Errorf("volume %s: config map %s, want %s", v.Name, v.ConfigMap.Name, o.ConfigMap.Name)
			}
		}
	}
	for mount, path := range map[string]string{
		"kube-router:/lib/modules":      "/lib/modules",
		"kube-router:/run/xtables.lock": "/run/xtables.lock",
		"kube-router:/etc/cni/net.d":    "/etc/cni/net.d",
		"install-cni:/etc/cni/net.d":    "/etc/cni/net.d",
	} {
		if hostPaths[mount] != path {
			t.Errorf("%s: host path %q, want %s", mount, hostPaths[mount], path)
		}
	}

	if o.ServiceAccount.Namespace != "kube-system" {
		t.Errorf("service account in %q", o.ServiceAccount.Namespace)
	}
	if b := o.Binding; b.RoleRef.Name != o.ClusterRole.Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Name != o.ServiceAccount.Name || b.Subjects[0].Namespace != o.ServiceAccount.Namespace {
		t.Errorf("binding %+v does not bind %s to the service account", b, o.ClusterRole.Name)
	}
	for _, want := range []struct{ group, resource, verb string }{
		{"", "nodes", "list"}, {"", "nodes", "watch"}, {"", "pods", "watch"}, {"", "namespaces", "watch"},
		{"", "services", "watch"}, {"", "endpoints", "watch"}, {"discovery.k8s.io", "endpointslices", "watch"},
		{"networking.k8s.io", "networkpolicies", "watch"}, {"coordination.k8s.io", "leases", "update"},
	} {
		if !allows(o.ClusterRole.Rules, want.group, want.resource, want.verb) {
			t.Errorf("cluster role does not allow %s on %s.%s", want.verb, want.resource, want.group)
		}
	}
	if allows(o.ClusterRole.Rules, "", "nodes", "update") || allows(o.ClusterRole.Rules, "", "secrets", "get") {
		t.Error("cluster role allows more than kube-router needs")
	}
	for key, cidrs := range map[string][]string{kubeRouterCNIKey: nil, kubeRouterCNIKey + ".w1": {"10.244.1.0/24"}, kubeRouterCNIKey + ".w2": {"10.244.2.0/24"}} {
		if conf, want := o.ConfigMap.Data[key], mustConf(t, cidrs); strings.TrimSpace(conf) != strings.TrimSpace(want) {
			t.Errorf("config map key %s holds\n%s\nwant\n%s", key, conf, want)
		}
	}
	if !strings.HasPrefix(o.ConfigMap.Data["modprobe"], "#!/bin/sh") {
		t.Errorf("config map has no modprobe script")
	}
	if hostPaths["kube-router:/usr/local/sbin/modprobe"] != "" {
		t.Error("modprobe comes from the node")
	}
	var shim bool
	for _, m := range c.VolumeMounts {
		shim = shim || m.MountPath == "/usr/local/sbin/modprobe" && m.SubPath == "modprobe" && m.Name == "kube-router-cfg"
	}
	if !shim {
		t.Errorf("kube-router does not get the modprobe script: %v", c.VolumeMounts)
	}
	if v := volumes["kube-router-cfg"]; v.ConfigMap == nil || v.ConfigMap.DefaultMode == nil || *v.ConfigMap.DefaultMode&0o111 == 0 {
		t.Errorf("config map volume %+v: its files must be executable (modprobe)", v.VolumeSource)
	}
	init := spec.InitContainers[0]
	if init.SecurityContext == nil || init.SecurityContext.Privileged == nil || !*init.SecurityContext.Privileged {
		t.Error("install-cni is not privileged: it makes kube-bridge on the node")
	}
	if len(init.Env) != 1 || init.Env[0].Name != "NODE_NAME" || init.Env[0].ValueFrom == nil {
		t.Errorf("install-cni env %v: want NODE_NAME (it picks its node's conflist)", init.Env)
	}
}

func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

func mustConf(t *testing.T, cidrs []string) string {
	b, err := kubeRouterCNIConfList(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The init container's script, run with sh against a temporary directory
// standing for the node's /etc and with a stand-in for ip: it makes
// kube-bridge, installs its node's conflist (the template for a node it has
// none for) once, and never overwrites the one kube-router has completed.
func TestInstallCNIScript(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on this machine: the init container's script cannot be run")
	}
	dir := t.TempDir()
	script := strings.NewReplacer("/etc/cni/net.d", filepath.Join(dir, "cni"), "/etc/kube-router", filepath.Join(dir, "cfg")).Replace(installCNIScript)
	for _, d := range []string{"cni", "cfg", "bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// ip: "link show" fails (no bridge yet), every call is logged.
	ipLog := filepath.Join(dir, "ip.log")
	fakeIP := "#!/bin/sh\necho \"$*\" >> " + ipLog + "\n[ \"$1 $2\" = \"link show\" ] && exit 1\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "ip"), []byte(fakeIP), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{kubeRouterCNIKey: "template\n", nodeConfKey("w1"): "w1's\n"} {
		if err := os.WriteFile(filepath.Join(dir, "cfg", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "cni", filepath.Base(KubeRouterCNIConf))
	run := func(node string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "NODE_NAME="+node, "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script on %s: %v\n%s", node, err, out)
		}
	}
	read := func(f string) string { b, _ := os.ReadFile(f); return string(b) }

	run("w1")
	if got := read(conf); got != "w1's\n" {
		t.Errorf("node w1 got %q, want its own conflist", got)
	}
	if got := read(ipLog); got != "link show kube-bridge\nlink add kube-bridge type bridge\nlink set kube-bridge up\n" {
		t.Errorf("ip calls:\n%s", got)
	}
	if err := os.WriteFile(conf, []byte("completed by kube-router\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("w1")
	if got := read(conf); got != "completed by kube-router\n" {
		t.Errorf("a second run replaced kube-router's file: %q", got)
	}
	os.Remove(conf)
	run("late-joiner")
	if got := read(conf); got != "template\n" {
		t.Errorf("a node without its own conflist got %q, want the template", got)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cni"))
	if len(entries) != 1 {
		t.Errorf("%d files in the CNI directory, want 1 (no temporary file left)", len(entries))
	}
}

// The modprobe stand-in succeeds for what is in the kernel and fails, with a
// reason, for what is not.
func TestModprobeShim(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on this machine: the modprobe script cannot be run")
	}
	dir := t.TempDir()
	shim := filepath.Join(dir, "modprobe")
	if err := os.WriteFile(shim, []byte(modprobeShim), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(shim, "no_such_module_xyz").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no_such_module_xyz is not in this kernel") {
		t.Errorf("missing module: err %v, output %q", err, out)
	}
	_, statErr := os.Stat("/proc/sys/net/bridge")
	err = exec.Command(shim, "-a", "br_netfilter").Run()
	if (statErr == nil) != (err == nil) {
		t.Errorf("br_netfilter: /proc/sys/net/bridge present %v, modprobe err %v", statErr == nil, err)
	}
}

func TestApplyKubeRouter(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if err := applyKubeRouter(ctx, cs, "old:tag", nil); err != nil {
		t.Fatal(err)
	}
	// A second apply (a retried install) updates instead of failing.
	if err := applyKubeRouter(ctx, cs, testImage, map[string][]string{"w1": {"10.244.1.0/24"}}); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := ds.Spec.Template.Spec.Containers[0].Image; img != testImage {
		t.Errorf("daemon set image %s after the second apply, want %s", img, testImage)
	}
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data[nodeConfKey("w1")]; !ok {
		t.Errorf("config map keys after the second apply lack w1's conflist: %v", cm.Data)
	}
	for _, get := range []func() error{
		func() error {
			_, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := cs.RbacV1().ClusterRoles().Get(ctx, "kube-router", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "kube-router", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Error(err)
		}
	}
}

func node(name, ip string, cidrs ...string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDRs: cidrs},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: ip},
		}},
	}
}

func TestPodRoutes(t *testing.T) {
	nodes := []corev1.Node{
		node("cp", "172.18.0.2", "10.244.0.0/24"),
		node("w1", "172.18.0.3", "10.244.1.0/24"),
		node("w2", "172.18.0.4", "10.244.2.0/24", "fd00:10:244:2::/64"),
	}
	got, err := PodRoutes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Route{
		"cp": {{"10.244.1.0/24", "172.18.0.3"}, {"10.244.2.0/24", "172.18.0.4"}},
		"w1": {{"10.244.0.0/24", "172.18.0.2"}, {"10.244.2.0/24", "172.18.0.4"}},
		"w2": {{"10.244.0.0/24", "172.18.0.2"}, {"10.244.1.0/24", "172.18.0.3"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes\n%v\nwant\n%v", got, want)
	}
	if _, err := PodRoutes([]corev1.Node{node("cp", "172.18.0.2")}); err == nil {
		t.Error("a node without a pod CIDR was accepted: kube-router cannot route it")
	}
}

func TestMissingRoutes(t *testing.T) {
	want := []Route{{"10.244.1.0/24", "172.18.0.3"}, {"10.244.2.0/24", "172.18.0.4"}}
	// `ip -4 route show proto 17` on a node where BGP has brought one route.
	out := "10.244.1.0/24 via 172.18.0.3 dev eth0 \n"
	got := MissingRoutes("cp", want, out)
	if len(got) != 1 || got[0] != "cp: no route 10.244.2.0/24 via 172.18.0.4" {
		t.Errorf("missing %q", got)
	}
	out += "10.244.2.0/24 via 172.18.0.4 dev eth0 proto 17\n"
	if got := MissingRoutes("cp", want, out); len(got) != 0 {
		t.Errorf("missing %q with both routes there", got)
	}
	// A route to the right CIDR through the wrong node does not count.
	if got := MissingRoutes("cp", want[:1], "10.244.1.0/24 via 172.18.0.9 dev eth0\n"); len(got) != 1 {
		t.Errorf("missing %q: a route via another node was taken", got)
	}
}

func TestKubeRouterNeedsItsImage(t *testing.T) {
	if _, err := KubeRouter(&images.Plan{}); err == nil || !strings.Contains(err.Error(), "kube-router") {
		t.Errorf("a plan without the kube-router image: err %v", err)
	}
}

func TestWaitPodCIDRs(t *testing.T) {
	ctx := context.Background()
	w1, w2 := node("w1", "172.18.0.3", "10.244.1.0/24"), node("w2", "172.18.0.4")
	cs := fake.NewClientset(&w1, &w2)
	if _, err := waitPodCIDRs(ctx, cs, 2, 1500*time.Millisecond); err == nil {
		t.Error("a node without a pod CIDR yet was accepted")
	}
	w2.Spec.PodCIDR = "10.244.2.0/24" // the older single field
	if _, err := cs.CoreV1().Nodes().Update(ctx, &w2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := waitPodCIDRs(ctx, cs, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"w1": {"10.244.1.0/24"}, "w2": {"10.244.2.0/24"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pod CIDRs %v, want %v", got, want)
	}
}

func TestPodProblems(t *testing.T) {
	ctx := context.Background()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "kube-router"}}
	pod := func(name string, init, main corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{"app": "kube-router"}},
			Spec:       corev1.PodSpec{NodeName: "node-" + name},
			Status:     corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{init}, ContainerStatuses: []corev1.ContainerStatus{main}},
		}
	}
	done := corev1.ContainerStatus{Name: "install-cni", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	cs := fake.NewClientset(
		pod("good", done, corev1.ContainerStatus{Name: "kube-router", Ready: true, State: running}),
		pod("flaky", done, corev1.ContainerStatus{Name: "kube-router", Ready: true, State: running, RestartCount: 2,
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 255, Reason: "Error"}}}),
		pod("stuck", corev1.ContainerStatus{Name: "install-cni", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image not present"}}},
			corev1.ContainerStatus{Name: "kube-router", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}),
	)
	got := cluster.PodProblems(ctx, cs, "kube-system", sel)
	for _, want := range []string{
		"pod flaky on node-flaky, container kube-router: restarted 2 times, last Error (exit 255)",
		"pod stuck on node-stuck, container install-cni: ErrImageNeverPull: image not present",
		"pod stuck on node-stuck, container kube-router: PodInitializing: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "good") || strings.Contains(got, "Completed") {
		t.Errorf("a healthy pod or a finished init container is reported:\n%s", got)
	}
}
