package iptables

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func fakeRunner(outputs map[string]string) Runner {
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		key := strings.Join(append([]string{name}, args...), " ")
		out, ok := outputs[key]
		if !ok {
			return nil, errors.New("not found: " + key)
		}
		return []byte(out), nil
	}
}

func lookPathOf(present ...string) func(string) (string, error) {
	return func(name string) (string, error) {
		if slices.Contains(present, name) {
			return "/usr/sbin/" + name, nil
		}
		return "", errors.New("not found")
	}
}

func TestDetectBackend(t *testing.T) {
	ctx := context.Background()
	kubeRules := "*nat\n-A PREROUTING -j KUBE-SERVICES\n-A KUBE-SERVICES -j KUBE-SVC-X\nCOMMIT\n"
	for _, tc := range []struct {
		name    string
		present []string
		outputs map[string]string
		want    string
		wantErr bool
	}{
		{"kube-proxy on legacy", []string{"iptables-nft-save", "iptables-legacy-save"},
			map[string]string{"iptables-nft-save": "", "iptables-legacy-save": kubeRules}, "iptables-legacy", false},
		{"kube-proxy on nft", []string{"iptables-nft-save", "iptables-legacy-save"},
			map[string]string{"iptables-nft-save": kubeRules, "iptables-legacy-save": ""}, "iptables-nft", false},
		{"empty netns, iptables is legacy", []string{"iptables-nft-save", "iptables-legacy-save"},
			map[string]string{"iptables-nft-save": "", "iptables-legacy-save": "", "iptables --version": "iptables v1.8.9 (legacy)"}, "iptables-legacy", false},
		{"empty netns, iptables is nft", []string{"iptables-nft-save", "iptables-legacy-save"},
			map[string]string{"iptables-nft-save": "", "iptables-legacy-save": "", "iptables --version": "iptables v1.8.9 (nf_tables)"}, "iptables-nft", false},
		{"only nft installed", []string{"iptables-nft-save"}, map[string]string{"iptables-nft-save": ""}, "iptables-nft", false},
		{"unsuffixed only", []string{"iptables"}, nil, "iptables", false},
		{"nothing", nil, nil, "", true},
	} {
		b, err := DetectBackend(ctx, fakeRunner(tc.outputs), lookPathOf(tc.present...))
		if (err != nil) != tc.wantErr || b.IPv4 != tc.want {
			t.Errorf("%s: backend %q, error %v; want %q, error %v", tc.name, b.IPv4, err, tc.want, tc.wantErr)
		}
	}
}
