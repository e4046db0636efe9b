package egress

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// kind's own network on every machine: the ULA subnet must be kind's, so
// that kind takes the network the guard made as the one it would make.
func TestULASubnetIsKinds(t *testing.T) {
	if got := ulaSubnet("kind", 0); got != "fc00:f853:ccd:e793::/64" {
		t.Errorf("ulaSubnet(kind, 0) = %s, want kind's fc00:f853:ccd:e793::/64", got)
	}
	if ulaSubnet("kind", 1) == ulaSubnet("kind", 0) {
		t.Error("a second attempt must probe another subnet")
	}
}

func TestListed(t *testing.T) {
	listing := `-P FORWARD DROP
-N DOCKER-USER
-A DOCKER-USER -c 3 180 -i br-f051cb7d68aa ! -o br-f051cb7d68aa -p tcp -m comment --comment labrun-egress-guard -j REJECT --reject-with tcp-reset
-A DOCKER-USER -i br-f051cb7d68aa ! -o br-f051cb7d68aa -m comment --comment "labrun-egress-guard" -j REJECT --reject-with icmp-admin-prohibited
-A DOCKER-USER -i br-0000 -m comment --comment someone-else -j DROP
-A DOCKER-USER -j RETURN
`
	got := listed([]byte(listing))
	want := []rule{
		{"DOCKER-USER", "br-f051cb7d68aa", []string{"-D", "DOCKER-USER", "-i", "br-f051cb7d68aa", "!", "-o", "br-f051cb7d68aa", "-p", "tcp", "-m", "comment", "--comment", "labrun-egress-guard", "-j", "REJECT", "--reject-with", "tcp-reset"}, 3},
		{"DOCKER-USER", "br-f051cb7d68aa", []string{"-D", "DOCKER-USER", "-i", "br-f051cb7d68aa", "!", "-o", "br-f051cb7d68aa", "-m", "comment", "--comment", `"labrun-egress-guard"`, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listed:\n got %+v\nwant %+v", got, want)
	}
}

func TestRulesRejectTCPFirst(t *testing.T) {
	rs := rules("br-x", "icmp-admin-prohibited")
	if len(rs) != 2 || rs[0][len(rs[0])-1] != "tcp-reset" || rs[1][len(rs[1])-1] != "icmp-admin-prohibited" {
		t.Errorf("rules: %q", rs)
	}
}

// kind's network goes only when no kind container (of any cluster, running
// or stopped) is left: docker network rm would fail on running ones, and a
// stopped node that is started again needs its network.
func TestRemoveNetwork(t *testing.T) {
	tests := []struct {
		name       string
		containers string
		network    bool
		wantRemove bool
	}{
		{"a kind container left", "3f2a1b\n", true, false},
		{"none left", "", true, true},
		{"no network", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran [][]string
			h := Host{Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
				ran = append(ran, append([]string{name}, args...))
				switch {
				case args[0] == "ps":
					return []byte(tt.containers), nil
				case args[0] == "network" && args[1] == "ls":
					if tt.network {
						return []byte("f051cb7d68aa11\n"), nil
					}
					return nil, nil
				case args[0] == "network" && args[1] == "inspect":
					return []byte(`[{"Id":"f051cb7d68aa1122","Options":{}}]`), nil
				case args[0] == "network" && args[1] == "rm":
					return nil, nil
				}
				return nil, fmt.Errorf("unexpected %q", args)
			}}
			got, err := h.RemoveNetwork(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rm := slices.ContainsFunc(ran, func(c []string) bool { return slices.Equal(c, []string{"docker", "network", "rm", "kind"}) })
			if got != tt.wantRemove || rm != tt.wantRemove {
				t.Errorf("RemoveNetwork = %v (ran rm: %v), want %v; ran %q", got, rm, tt.wantRemove, ran)
			}
		})
	}
}
