//go:build e2e

package kuberouter

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/report"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// prefix names this test's cluster: labrun-e2e-kr-kube-router.
const prefix = "labrun-e2e-kr"

func TestE2EKubeRouter(t *testing.T) {
	// What Setup leaves for the assessments.
	var (
		summary report.Summary
		kc      *cluster.Cluster
		cs      kubernetes.Interface
	)
	f := features.New("podNetwork kube-router").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// The cluster is kept by the run for the checks below; it goes
			// when the test ends, whatever happened (a failed Setup never
			// reaches a Teardown step, a cleanup it does).
			run := e2ekit.RunScenario(ctx, t, "testdata/kube-router.yaml", prefix)
			summary, kc = run.Summary, run.Cluster(t, "kube-router")
			cs = kc.Client
			return ctx
		}).
		Assess("the bare glibc cell completed with samples and node counters", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			s := summary
			if len(s.Cells) != 1 {
				t.Fatalf("%d cells, want 1", len(s.Cells))
			}
			c := s.Cells[0]
			if c.State != results.Complete {
				t.Fatalf("cell %s: %s (%s)", c.ID, c.State, c.Reason)
			}
			if c.Emulator || c.Chaos != "bare" {
				t.Errorf("cell %s: chaos %q, emulator %v; want the bare kernel", c.ID, c.Chaos, c.Emulator)
			}
			// 2 workers × 1 pod × 20/s × 10 s = 400 lookups when none waits.
			if c.Stats == nil || c.Stats.Count < 100 {
				t.Fatalf("cell %s: stats %+v; want at least 100 lookups", c.ID, c.Stats)
			}
			t.Logf("cell %s: %d lookups, p50 %.2f ms, p99 %.2f ms, max %.1f ms, by result %v, timeouts %d",
				c.ID, c.Stats.Count, c.Stats.P50MS, c.Stats.P99MS, c.Stats.MaxMS, c.Stats.ByResult, c.Stats.Timeouts)
			if failed := c.Stats.Timeouts + c.Stats.Errors; failed*2 > c.Stats.Count {
				t.Errorf("cell %s: %d of %d lookups timed out or failed: the pod network does not carry DNS", c.ID, failed, c.Stats.Count)
			}
			// The nodes' conntrack statistics were read before and after the
			// cell: on this kernel the event columns (insert, found, new) mostly
			// read 0 and a bare cell need not clash, so what must show is that
			// the columns are there and the nodes track connections (entries).
			if c.Counters == nil {
				t.Fatalf("cell %s: no node counters", c.ID)
			}
			for _, k := range []string{"clashres", "insert_failed", "drop"} {
				if _, ok := c.Counters.Conntrack[k]; !ok {
					t.Errorf("cell %s: conntrack counter %s not read: %v", c.ID, k, c.Counters.Conntrack)
				}
			}
			if g, ok := c.Counters.Gauges["entries"]; !ok || g.NodeMax == 0 {
				t.Errorf("cell %s: conntrack entries %+v (present %v): no node tracks a connection", c.ID, g, ok)
			}
			if len(c.Counters.Emulator) != 0 {
				t.Errorf("cell %s: emulator counters %v on a bare cell", c.ID, c.Counters.Emulator)
			}
			t.Logf("cell %s: conntrack deltas %v, gauges %v", c.ID, c.Counters.Conntrack, c.Counters.Gauges)
			return ctx
		}).
		Assess("kube-router runs on every node, and BGP programmed routes to the other nodes' pod CIDRs", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if n := int32(len(kc.Nodes)); ds.Status.NumberReady != n || n != 3 {
				t.Errorf("kube-router ready on %d of %d nodes; want all 3", ds.Status.NumberReady, n)
			}
			if _, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "labnet", metav1.GetOptions{}); err == nil {
				t.Error("the default network's labnet DaemonSet is there too")
			}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := addons.PodRoutes(nodes.Items)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes.Items {
				out, err := kc.Exec(ctx, n.Name, addons.KubeRouterRoutesCommand...)
				if err != nil {
					t.Errorf("node %s: %v", n.Name, err)
					continue
				}
				t.Logf("node %s (pod CIDR %s): %s:\n%s", n.Name, n.Spec.PodCIDR, strings.Join(addons.KubeRouterRoutesCommand, " "), out)
				if len(want[n.Name]) != 2 {
					t.Errorf("node %s: %d routes expected, want 2 (3 nodes)", n.Name, len(want[n.Name]))
				}
				for _, m := range addons.MissingRoutes(n.Name, want[n.Name], string(out)) {
					t.Error(m)
				}
				// The node's CNI configuration is kube-router's, with its own pod CIDR.
				ls, err := kc.Exec(ctx, n.Name, "ls", "-A", "/etc/cni/net.d")
				if err != nil {
					t.Error(err)
				} else if got := strings.Fields(string(ls)); !slices.Equal(got, []string{filepath.Base(addons.KubeRouterCNIConf)}) {
					t.Errorf("node %s: /etc/cni/net.d holds %v, want only kube-router's conflist", n.Name, got)
				}
				conf, err := kc.Exec(ctx, n.Name, "cat", addons.KubeRouterCNIConf)
				if err != nil {
					t.Error(err)
				} else if s := string(conf); !strings.Contains(s, `"`+n.Spec.PodCIDR+`"`) || !strings.Contains(s, addons.KubeRouterBridge) {
					t.Errorf("node %s: %s lacks its pod CIDR %s or %s:\n%s", n.Name, addons.KubeRouterCNIConf, n.Spec.PodCIDR, addons.KubeRouterBridge, s)
				}
			}
			return ctx
		}).
		Assess("glibc pods on every node resolve through the DNS VIP and reach CoreDNS on the other nodes", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			image := probeImage(t, summary.Env)
			dnsSvc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			kube, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dnsPods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
			if err != nil {
				t.Fatal(err)
			}
			crossNode := 0
			for _, n := range kc.Nodes {
				// CoreDNS pods elsewhere: reached straight by pod IP, over
				// kube-router's routes (no VIP, no DNAT).
				var remote []string
				for _, p := range dnsPods.Items {
					if p.Spec.NodeName != n.Name && p.Status.PodIP != "" {
						remote = append(remote, p.Status.PodIP)
					}
				}
				crossNode += len(remote)
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "kr-resolve-", Namespace: "default"},
					Spec: corev1.PodSpec{
						NodeName:      n.Name,
						Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
						RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{
							Name: "resolve", Image: image, ImagePullPolicy: corev1.PullNever,
							Command: append([]string{"python3", "-c", resolveScript}, remote...),
						}},
					},
				}
				podName, phase := e2ekit.RunPod(ctx, t, cs, pod)
				out := e2ekit.PodLogs(ctx, t, cs, "default", podName, "resolve")
				t.Logf("node %s, pod %s (%s):\n%s", n.Name, podName, phase, out)
				if phase != corev1.PodSucceeded {
					t.Errorf("node %s: resolving pod ended %s", n.Name, phase)
				}
				if !strings.Contains(out, "nameserver "+dnsSvc.Spec.ClusterIP+"\n") {
					t.Errorf("node %s: resolv.conf does not point at the DNS VIP %s", n.Name, dnsSvc.Spec.ClusterIP)
				}
				if got := field(out, "getent kubernetes.default exit 0 addrs "); got != kube.Spec.ClusterIP {
					t.Errorf("node %s: kubernetes.default resolved to %q, want %s", n.Name, got, kube.Spec.ClusterIP)
				}
				if got := field(out, "getent api.lab.example exit 0 addrs "); got == "" || got == "-" {
					t.Errorf("node %s: api.lab.example did not resolve through the VIP", n.Name)
				}
				for _, ip := range remote {
					if got := field(out, "direct "+ip+" rcode 0 addrs "); got != kube.Spec.ClusterIP {
						t.Errorf("node %s: CoreDNS at %s (another node) answered %q, want %s", n.Name, ip, got, kube.Spec.ClusterIP)
					}
				}
			}
			if crossNode == 0 {
				t.Errorf("no CoreDNS pod on a node other than a probe's: %d CoreDNS pods", len(dnsPods.Items))
			}
			return ctx
		}).
		Assess("kube-router logged no error and never restarted", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=kube-router"})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) != len(kc.Nodes) {
				t.Errorf("%d kube-router pods, want one per node (%d)", len(pods.Items), len(kc.Nodes))
			}
			for _, p := range pods.Items {
				for _, c := range p.Status.ContainerStatuses {
					if c.RestartCount != 0 {
						t.Errorf("pod %s: container %s restarted %d times", p.Name, c.Name, c.RestartCount)
					}
				}
				logs := e2ekit.PodLogs(ctx, t, cs, "kube-system", p.Name, "kube-router")
				for _, line := range strings.Split(logs, "\n") {
					if isErrorLine(line) {
						t.Errorf("pod %s on %s: %s", p.Name, p.Spec.NodeName, line)
					}
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// klogError is a klog error or fatal line; gobgp logs through logrus.
var klogError = regexp.MustCompile(`^[EF]\d{4} `)

func isErrorLine(line string) bool {
	return klogError.MatchString(line) || strings.Contains(line, "level=error") || strings.Contains(line, "level=fatal")
}

// field returns the rest of the line of out that starts with prefix.
func field(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// probeImage is the glibc probe image the run used (env.json).
func probeImage(t *testing.T, env results.Env) string {
	t.Helper()
	for _, img := range env.Images {
		if strings.Contains(img.Name, "/probe-glibc:") {
			return img.Name
		}
	}
	t.Fatalf("env.json names no probe-glibc image: %+v", env.Images)
	return ""
}

// resolveScript runs in the glibc probe image: glibc's getaddrinfo (getent)
// for a short in-cluster name and a lab upstream name, through the pod's
// resolv.conf (the DNS VIP); then a DNS query sent straight to each CoreDNS
// pod IP given as an argument.
const resolveScript = `
import socket, struct, subprocess, sys
print(open('/etc/resolv.conf').read())
for name in ('kubernetes.default', 'api.lab.example'):
    r = subprocess.run(['getent', 'ahostsv4', name], capture_output=True, text=True)
    addrs = sorted({l.split()[0] for l in r.stdout.splitlines() if l.strip()})
    print('getent', name, 'exit', r.returncode, 'addrs', ','.join(addrs) or '-')

def skip_name(b, i):
    while True:
        n = b[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += n + 1

def query(server, name):
    q = struct.pack('>HHHHHH', 0x4b52, 0x0100, 1, 0, 0, 0)
    q += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0' + struct.pack('>HH', 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    b = s.recv(4096)
    rcode, answers = b[3] & 0x0F, struct.unpack('>H', b[6:8])[0]
    i, addrs = skip_name(b, 12) + 4, []
    for _ in range(answers):
        i = skip_name(b, i)
        typ, _, _, length = struct.unpack('>HHIH', b[i:i + 10])
        i += 10
        if typ == 1:
            addrs.append(socket.inet_ntoa(b[i:i + length]))
        i += length
    return rcode, addrs

for server in sys.argv[1:]:
    try:
        rcode, addrs = query(server, 'kubernetes.default.svc.cluster.local')
        print('direct', server, 'rcode', rcode, 'addrs', ','.join(addrs) or '-')
    except Exception as e:
        print('direct', server, 'error', e)
`
