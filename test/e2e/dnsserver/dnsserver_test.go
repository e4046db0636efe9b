//go:build e2e

package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"labrun.dev/labrun/pkg/addons"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/collect"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/test/e2e/e2ekit"
)

// prefix names this suite's cluster: labrun-e2e-ap-default.
const prefix = "labrun-e2e-ap"

func TestE2EDnsmasqCoreDNS(t *testing.T) {
	// What the setup made: the run, and its cluster (kept until the test ends).
	var (
		run *e2ekit.Run
		kc  *cluster.Cluster
		cs  kubernetes.Interface
	)
	f := features.New("dnsmasq in front of CoreDNS, captures, autopath").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			run = e2ekit.RunScenario(ctx, t, "testdata/dnsmasq.yaml", prefix)
			kc = run.Cluster(t, "default")
			cs = kc.Client
			return ctx
		}).
		Assess("both cells complete, with samples, counters and captures; claim 9 passes", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if run.Summary.Totals.Cells[results.Complete] != 2 {
				t.Errorf("cells by state %v, want 2 complete", run.Summary.Totals.Cells)
			}
			qpl := map[string]float64{}
			for _, c := range run.Summary.Cells {
				if c.Stats == nil || c.Stats.Count == 0 || c.Counters == nil {
					t.Errorf("cell %s: stats %v, counters %v: want both", c.ID, c.Stats, c.Counters)
					continue
				}
				capt, ok, err := run.Result.Run.ReadCaptureSummary(c.ID)
				if err != nil || !ok {
					t.Errorf("cell %s: capture summary: %v %v", c.ID, ok, err)
					continue
				}
				qpl[c.ID] = capt.Counts().QueriesPerLookup()
				t.Logf("cell %s: %d lookups by the probes, p50 %.2f ms, p99 %.2f ms; capture: %d queries, %d answers, %d lookups (%.2f queries per lookup), %d same-port A/AAAA pairs, %d unanswered",
					c.ID, c.Stats.Count, c.Stats.P50MS, c.Stats.P99MS, capt.Queries, capt.Answers, capt.Lookups.Count, capt.Counts().QueriesPerLookup(), capt.SamePortPairs, capt.Unanswered)
				// Every lookup the probes made is in the capture (a lookup
				// is at least an A and an AAAA query).
				if capt.Lookups.Count < c.Stats.Count*9/10 || capt.Queries < 2*c.Stats.Count {
					t.Errorf("cell %s: capture has %d lookups and %d queries for %d lookups by the probes", c.ID, capt.Lookups.Count, capt.Queries, c.Stats.Count)
				}
			}
			none, ndots1 := qpl["default_glibc_none"], qpl["default_glibc_ndots-1"]
			if none <= analyze.ExpandedQueriesMin || ndots1 >= none {
				t.Errorf("queries per lookup: none %.2f, ndots-1 %.2f; want none > %.1f and ndots-1 fewer", none, ndots1, analyze.ExpandedQueriesMin)
			}
			for _, c := range run.Summary.Claims {
				if c.N == 9 && c.Verdict != analyze.Pass {
					t.Errorf("claim 9: %s: %s", c.Verdict, c.Evidence)
				} else if c.N == 8 || c.N == 9 {
					t.Logf("claim %d: %s: %s", c.N, c.Verdict, c.Evidence)
				}
			}
			return ctx
		}).
		Assess("no tcpdump and no capture file is left on a node", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, n := range kc.Nodes {
				if out, err := kc.Exec(ctx, n.Name, "pgrep", "-x", "tcpdump"); err == nil {
					t.Errorf("node %s: tcpdump still running (pids %s)", n.Name, strings.Fields(string(out)))
				}
				out, err := kc.Exec(ctx, n.Name, "sh", "-c", "ls -A "+collect.CaptureRoot+" 2>/dev/null")
				if err == nil && strings.TrimSpace(string(out)) != "" {
					t.Errorf("node %s: left in %s: %s", n.Name, collect.CaptureRoot, out)
				}
			}
			return ctx
		}).
		Assess("the DNS VIP's endpoints are the dnsmasq pods, coredns-upstream's the CoreDNS pods", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			vip, others, err := addons.VIPEndpoints(ctx, cs)
			if err != nil {
				t.Fatal(err)
			}
			dnsmasq := podNames(ctx, t, cs, "k8s-app="+addons.DnsmasqApp)
			coredns := podNames(ctx, t, cs, "k8s-app=kube-dns")
			t.Logf("kube-dns VIP endpoints %v; dnsmasq pods %v; CoreDNS pods %v", vip, dnsmasq, coredns)
			if !slices.Equal(vip, dnsmasq) || others != 0 || len(dnsmasq) != 2 {
				t.Errorf("VIP endpoints %v (+%d not pods), want the 2 dnsmasq pods %v", vip, others, dnsmasq)
			}
			for _, p := range coredns {
				if slices.Contains(vip, p) {
					t.Errorf("CoreDNS pod %s is behind the VIP", p)
				}
			}
			slices2, err := cs.DiscoveryV1().EndpointSlices("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + addons.CoreDNSUpstreamName})
			if err != nil {
				t.Fatal(err)
			}
			var up []string
			for _, s := range slices2.Items {
				for _, e := range s.Endpoints {
					if e.TargetRef != nil {
						up = append(up, e.TargetRef.Name)
					}
				}
			}
			slices.Sort(up)
			if !slices.Equal(up, coredns) {
				t.Errorf("%s endpoints %v, want the CoreDNS pods %v", addons.CoreDNSUpstreamName, up, coredns)
			}
			return ctx
		}).
		Assess("the probes' queries reached CoreDNS through dnsmasq, and dnsmasq answered some from its cache", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			up, err := cs.CoreV1().Services("kube-system").Get(ctx, addons.CoreDNSUpstreamName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// SIGUSR1 makes dnsmasq log its counters (and nothing else).
			for _, n := range kc.Nodes {
				out, err := kc.Exec(ctx, n.Name, "pgrep", "-x", "dnsmasq")
				if err != nil {
					continue // no dnsmasq on this node
				}
				for _, pid := range strings.Fields(string(out)) {
					if _, err := kc.Exec(ctx, n.Name, "kill", "-USR1", pid); err != nil {
						t.Errorf("node %s: signal dnsmasq %s: %v", n.Name, pid, err)
					}
				}
			}
			time.Sleep(time.Second)
			sentRE := regexp.MustCompile(`server ` + regexp.QuoteMeta(up.Spec.ClusterIP) + `#53: queries sent (\d+)`)
			localRE := regexp.MustCompile(`queries forwarded (\d+), queries answered locally (\d+)`)
			var sent, forwarded, local int
			for _, p := range podNames(ctx, t, cs, "k8s-app="+addons.DnsmasqApp) {
				logs := e2ekit.PodLogs(ctx, t, cs, "kube-system", p, addons.DnsmasqName)
				m, l := lastMatch(sentRE, logs), lastMatch(localRE, logs)
				if m == nil || l == nil {
					t.Errorf("dnsmasq %s logged no counters for %s after SIGUSR1:\n%s", p, up.Spec.ClusterIP, logs)
					continue
				}
				s, _ := strconv.Atoi(m[1])
				fw, _ := strconv.Atoi(l[1])
				lo, _ := strconv.Atoi(l[2])
				t.Logf("dnsmasq %s: %d queries sent to %s (coredns-upstream), forwarded %d, answered locally %d", p, s, up.Spec.ClusterIP, fw, lo)
				sent, forwarded, local = sent+s, forwarded+fw, local+lo
			}
			if sent == 0 || forwarded == 0 {
				t.Errorf("dnsmasq sent %d queries to CoreDNS (%d forwarded): the probes' lookups did not go through it", sent, forwarded)
			}
			if local == 0 {
				t.Errorf("dnsmasq answered nothing from its cache")
			}
			return ctx
		}).
		Assess("autopath: the Corefile has it, and a pod asking CoreDNS makes fewer queries per lookup with it than without", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			before := directLookups(ctx, t, kc, run.Summary.Env, "ap-before")
			start := time.Now()
			if err := addons.Autopath(ctx, addons.Env{Cluster: kc, Progress: os.Stderr}); err != nil {
				t.Fatal(err)
			}
			t.Logf("autopath set up (CoreDNS restarted) in %s", time.Since(start).Round(100*time.Millisecond))
			cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			corefile := cm.Data["Corefile"]
			if !strings.Contains(corefile, "autopath @kubernetes") || !strings.Contains(corefile, "pods verified") || strings.Contains(corefile, "pods insecure") {
				t.Errorf("Corefile:\n%s", corefile)
			}
			after := directLookups(ctx, t, kc, run.Summary.Env, "ap-after")
			t.Logf("a glibc pod asking CoreDNS (coredns-upstream) directly: %.2f queries per lookup without autopath, %.2f with", before, after)
			if before <= analyze.ExpandedQueriesMin || after >= before {
				t.Errorf("queries per lookup: %.2f without autopath, %.2f with; want more than %.1f, then fewer", before, after, analyze.ExpandedQueriesMin)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func podNames(ctx context.Context, t *testing.T, cs kubernetes.Interface, selector string) []string {
	t.Helper()
	list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

func lastMatch(re *regexp.Regexp, s string) []string {
	all := re.FindAllStringSubmatch(s, -1)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}

// directLookups runs a glibc pod (namespace ns, made for it) that looks up
// an outside name and a short one 25 times each with CoreDNS itself as its
// nameserver (the coredns-upstream Service: autopath needs to see the pod's
// address, which dnsmasq hides) and ndots:5, captures its DNS traffic with
// the runner's capture, and returns the queries per lookup.
func directLookups(ctx context.Context, t *testing.T, c *cluster.Cluster, env results.Env, ns string) float64 {
	t.Helper()
	cs := c.Client
	up, err := cs.CoreV1().Services("kube-system").Get(ctx, addons.CoreDNSUpstreamName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var image string
	for _, img := range env.Images {
		if strings.Contains(img.Name, "probe-glibc") {
			image = img.Name
		}
	}
	if image == "" {
		t.Fatalf("env.json names no probe-glibc image: %+v", env.Images)
	}
	worker := c.Workers()[0]
	node, err := cs.CoreV1().Nodes().Get(ctx, worker.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
	})
	k, err := collect.StartCapture(ctx, c, "e2e-"+ns, []collect.CaptureNode{{Name: worker.Name, PodCIDR: node.Spec.PodCIDR}}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.WithoutCancel(ctx))
	five := "5"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "lookups", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeName:      worker.Name,
			DNSPolicy:     corev1.DNSNone,
			DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{up.Spec.ClusterIP},
				Searches:    []string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}},
			},
			Containers: []corev1.Container{{
				Name: "lookups", Image: image, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", "for i in $(seq 25); do getent ahosts api.lab.example >/dev/null || echo FAIL api; getent ahosts kubernetes.default >/dev/null || echo FAIL kubernetes; done; echo done"},
			}},
		},
	}
	name, phase := e2ekit.RunPod(ctx, t, cs, pod)
	out := e2ekit.PodLogs(ctx, t, cs, ns, name, "lookups")
	if phase != corev1.PodSucceeded || strings.Contains(out, "FAIL") {
		t.Errorf("lookups pod %s: %s\n%s", phase, out, out)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil {
		t.Fatalf("pod %s has no address (%q)", name, p.Status.PodIP)
	}
	if err := k.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, err := k.Write([]results.CapturePod{{Name: name, Node: worker.Name, IP: ip}}, dir+"/pcaps", dir+"/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for i, pt := range sum.Lookups.Patterns {
		if i == 3 {
			break
		}
		patterns = append(patterns, fmt.Sprintf("%d× %v", pt.Count, pt.Names))
	}
	t.Logf("%s: %d queries, %d lookups (%v), copies removed %d; most frequent: %s", ns, sum.Queries, sum.Lookups.Count,
		sum.Lookups.ByResult, sum.Copies, strings.Join(patterns, "; "))
	if sum.Lookups.Count < 50 {
		t.Errorf("%s: %d lookups captured, want the pod's 50", ns, sum.Lookups.Count)
	}
	if sum.Lookups.Count == 0 {
		return 0
	}
	return float64(sum.Queries) / float64(sum.Lookups.Count)
}
