package addons

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestMasqueradeWithout(t *testing.T) {
	// iptables-save -t nat of a lab node: labnet's rule and kube-proxy's.
	save := `*nat
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment --comment "labnet: masquerade traffic leaving the pod network" -j MASQUERADE%s
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE%s
COMMIT
`
	tests := []struct {
		labnet, kubeProxy string
		want              int
	}{
		{"", "", 2},
		{" --random-fully", "", 1},
		{"", " --random-fully", 1},
		{" --random-fully", " --random-fully", 0},
	}
	for _, tt := range tests {
		got := masqueradeWithout(strings.Replace(strings.Replace(save, "%s", tt.labnet, 1), "%s", tt.kubeProxy, 1), "--random-fully")
		if len(got) != tt.want {
			t.Errorf("labnet %q kube-proxy %q: %d rules without --random-fully (%q), want %d", tt.labnet, tt.kubeProxy, len(got), got, tt.want)
		}
	}
}

func TestSetEnv(t *testing.T) {
	c := &corev1.Container{Env: []corev1.EnvVar{{Name: "NODE_NAME", Value: "x"}}}
	if setEnv(c, "MASQUERADE_RANDOM_FULLY", "true") {
		t.Error("a new variable reported as already set")
	}
	if !setEnv(c, "MASQUERADE_RANDOM_FULLY", "true") {
		t.Error("the same value reported as a change (would restart labnet for nothing)")
	}
	if setEnv(c, "MASQUERADE_RANDOM_FULLY", "false") || c.Env[1].Value != "false" || len(c.Env) != 2 {
		t.Errorf("changed value: %v", c.Env)
	}
}

// The kernel takes the thresholds in any order but a lower one above a
// higher one makes no sense: they are set highest first and ordered.
func TestARPThresholdsOrdered(t *testing.T) {
	prev := int(^uint(0) >> 1)
	for _, kv := range ARPThresholds {
		v, err := strconv.Atoi(kv[1])
		if err != nil || v > prev || v < 1024 {
			t.Errorf("%s = %s: want a number above the defaults (≤ 1024), not above the previous %d", kv[0], kv[1], prev)
		}
		prev = v
	}
}
