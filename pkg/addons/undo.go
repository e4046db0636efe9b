package addons

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"labrun.dev/labrun/pkg/cluster"
)

// Undo returns a cluster to what it was before a mitigation was set up.
type Undo func(context.Context) error

// Undoable are the cluster-level mitigations whose set-up the lab undoes
// exactly, so that one cluster can serve a plain shape and then each of
// these in turn. nodelocaldns is not one: its node-cache runs with
// -skipteardown (its rules and its interface stay when it goes).
var Undoable = []string{"autopath", "random-fully", "arp-gc"}

// SetUpUndoable sets mitigation id up (one of Undoable) and returns how to
// undo it: CoreDNS's Corefile as it was (autopath), labnet's masquerade rule
// without --random-fully (random-fully), the host's neighbour thresholds as
// they were (arp-gc). Each undo waits until the cluster runs what it put
// back.
func SetUpUndoable(ctx context.Context, env Env, id string) (Undo, error) {
	switch id {
	case "autopath":
		cm, err := env.Cluster.Client.CoreV1().ConfigMaps(namespace).Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("autopath: coredns configmap: %w", err)
		}
		before := cm.Data["Corefile"]
		if err := Autopath(ctx, env); err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			err := rewriteCoreDNS(ctx, env.Cluster.Client, func(string) (string, error) { return before, nil })
			if err != nil {
				return fmt.Errorf("undo autopath: %w", err)
			}
			return nil
		}, nil
	case "random-fully":
		if err := RandomFully(ctx, env); err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			if err := plainMasquerade(ctx, env); err != nil {
				return fmt.Errorf("undo random-fully: %w", err)
			}
			return nil
		}, nil
	case "arp-gc":
		old, err := setARPThresholds(env)
		undo := func(context.Context) error {
			for _, kv := range slices.Backward(old) {
				if _, err := cluster.SetHostSysctl(kv[0], kv[1]); err != nil {
					return fmt.Errorf("undo arp-gc: %w", err)
				}
			}
			return nil
		}
		if err != nil {
			// What was set goes back: nothing is left half set.
			return nil, errors.Join(err, undo(ctx))
		}
		return undo, nil
	}
	return nil, fmt.Errorf("mitigation %q: the lab cannot undo it (undoable: %s)", id, strings.Join(Undoable, ", "))
}

// plainMasquerade restarts labnet without MASQUERADE_RANDOM_FULLY and waits
// until every node has labnet's plain rule and none with --random-fully
// (labnet swaps its rule when it starts: the old one goes first).
func plainMasquerade(ctx context.Context, env Env) error {
	dss := env.Cluster.Client.AppsV1().DaemonSets(namespace)
	ds, err := dss.Get(ctx, labnetName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("labnet: %w", err)
	}
	c := &ds.Spec.Template.Spec.Containers[0]
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "MASQUERADE_RANDOM_FULLY" }); i >= 0 {
		c.Env = slices.Delete(c.Env, i, i+1)
		if _, err := dss.Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("restart labnet: %w", err)
		}
	}
	if err := cluster.WaitDaemonSet(ctx, env.Cluster.Client, namespace, labnetName, len(env.Cluster.Nodes), timeout); err != nil {
		return err
	}
	return cluster.EachNode(env.Cluster.Nodes, func(n cluster.Node) error {
		var last []string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			out, err := env.Cluster.Exec(ctx, n.Name, "iptables-save", "-t", "nat")
			if err != nil {
				return false, err
			}
			plain, random := labnetMasquerade(string(out))
			last = random
			return plain > 0 && len(random) == 0, nil
		})
		if err != nil {
			return fmt.Errorf("node %s: labnet's plain masquerade rule not back, or one with --random-fully left (%s): %w", n.Name, strings.Join(last, "; "), err)
		}
		return nil
	})
}

// labnetMasquerade counts labnet's masquerade rules (by their comment) of
// iptables-save output without --random-fully, and returns those with it.
func labnetMasquerade(save string) (plain int, random []string) {
	for _, l := range strings.Split(save, "\n") {
		if !strings.HasPrefix(l, "-A ") || !strings.Contains(l, "labnet: masquerade") {
			continue
		}
		if strings.Contains(l, "--random-fully") {
			random = append(random, l)
		} else {
			plain++
		}
	}
	return plain, random
}
