package addons

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labrun.dev/labrun/pkg/cluster"
)

// labnetName is the default pod network's DaemonSet (images/labnet).
const labnetName = "labnet"

// RandomFully puts --random-fully on the nodes' masquerade rules: labnet's
// own (restarted with MASQUERADE_RANDOM_FULLY=true, it replaces its rule)
// and kube-proxy's, which kube-proxy already writes with --random-fully when
// the node's iptables supports it. It then checks every MASQUERADE rule of
// every node. It fixes the SNAT port race only: the lab shows that the DNAT
// race of DNS is untouched (claim 10).
func RandomFully(ctx context.Context, env Env) error {
	dss := env.Cluster.Client.AppsV1().DaemonSets(namespace)
	ds, err := dss.Get(ctx, labnetName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("random-fully: the lab sets it on labnet's masquerade rule (podNetwork default), "+
			"and this cluster has no labnet DaemonSet: %w", err)
	}
	c := &ds.Spec.Template.Spec.Containers[0]
	if !setEnv(c, "MASQUERADE_RANDOM_FULLY", "true") {
		if _, err := dss.Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("random-fully: restart labnet: %w", err)
		}
	}
	if err := cluster.WaitDaemonSet(ctx, env.Cluster.Client, namespace, labnetName, len(env.Cluster.Nodes), timeout); err != nil {
		return fmt.Errorf("random-fully: %w", err)
	}
	return cluster.EachNode(env.Cluster.Nodes, func(n cluster.Node) error {
		out, err := env.Cluster.Exec(ctx, n.Name, "iptables-save", "-t", "nat")
		if err != nil {
			return err
		}
		if bad := masqueradeWithout(string(out), "--random-fully"); len(bad) > 0 {
			return fmt.Errorf("random-fully: node %s still masquerades without it: %s", n.Name, strings.Join(bad, "; "))
		}
		return nil
	})
}

// masqueradeWithout returns the MASQUERADE rules of iptables-save output that
// lack option.
func masqueradeWithout(save, option string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j MASQUERADE") && !strings.Contains(l, option) {
			out = append(out, l)
		}
	}
	return out
}

// setEnv sets name=value in c's environment; it reports whether it was
// already so.
func setEnv(c *corev1.Container, name, value string) bool {
	for i, e := range c.Env {
		if e.Name == name {
			if e.Value == value && e.ValueFrom == nil {
				return true
			}
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return false
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	return false
}

// ARPThresholds are the neighbour table thresholds the arp-gc mitigation
// sets, as the field reports raise them against ARP table overflow
// ("neighbour table overflow" in the kernel log), a look-alike of the race.
var ARPThresholds = [][2]string{
	// Highest first: the kernel wants gc_thresh1 ≤ gc_thresh2 ≤ gc_thresh3.
	{"net/ipv4/neigh/default/gc_thresh3", "100000"},
	{"net/ipv4/neigh/default/gc_thresh2", "90000"},
	{"net/ipv4/neigh/default/gc_thresh1", "80000"},
}

// ARPGC raises the neighbour table's garbage-collection thresholds. The
// table is one per kernel and its defaults can be set only from the host's
// network namespace (a kind node's /proc/sys/net/ipv4/neigh has no
// default), so the thresholds are set on the host, which is every node's
// kernel; the lab restores them when its last cluster is deleted.
func ARPGC(_ context.Context, env Env) error {
	_, err := setARPThresholds(env)
	return err
}

// setARPThresholds sets ARPThresholds on the host and returns each key
// with the value it replaced, in the order set.
func setARPThresholds(env Env) ([][2]string, error) {
	var old [][2]string
	for _, kv := range ARPThresholds {
		was, err := cluster.SetHostSysctl(kv[0], kv[1])
		if err != nil {
			return old, fmt.Errorf("arp-gc: %w", err)
		}
		old = append(old, [2]string{kv[0], was})
		progressf(env.Progress, "arp-gc: %s %s -> %s (host-wide: every node's kernel)\n", strings.ReplaceAll(kv[0], "/", "."), was, kv[1])
	}
	return old, nil
}

func progressf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format, a...)
	}
}
