package diagnose

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readCorefile(t *testing.T, name string) Corefile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "corefile", name))
	if err != nil {
		t.Fatal(err)
	}
	return ParseCorefile(string(b))
}

func TestParseCorefile(t *testing.T) {
	for _, tc := range []struct {
		file     string
		want     []CoreServer
		problems int
	}{
		{"kubeadm.Corefile", []CoreServer{{Zones: []string{".:53"}, PodsMode: "insecure", Cache: true, CacheTTL: "30",
			Forward: []Forward{{From: ".", To: []string{"/etc/resolv.conf"}}}}}, 0},
		{"autopath.Corefile", []CoreServer{{Zones: []string{".:53"}, Autopath: "@kubernetes", PodsMode: "verified", Cache: true, CacheTTL: "30",
			Forward: []Forward{{From: ".", To: []string{"10.96.53.53"}}}}}, 0},
		{"aks.Corefile", []CoreServer{{Zones: []string{".:53"}, PodsMode: "insecure", Cache: true, CacheTTL: "30",
			Forward: []Forward{{From: ".", To: []string{"/etc/resolv.conf"}}}, Imports: []string{"custom/*.override"}}}, 0},
		{"nodelocal.Corefile", []CoreServer{
			{Zones: []string{"cluster.local:53"}, Cache: true, Bind: []string{"169.254.20.10", "10.96.0.10"},
				Forward: []Forward{{From: ".", To: []string{"10.96.133.7"}, ForceTCP: true}}},
			{Zones: []string{"in-addr.arpa:53"}, Cache: true, CacheTTL: "30", Bind: []string{"169.254.20.10", "10.96.0.10"},
				Forward: []Forward{{From: ".", To: []string{"10.96.133.7"}, ForceTCP: true}}},
			{Zones: []string{".:53"}, Cache: true, CacheTTL: "30", Bind: []string{"169.254.20.10", "10.96.0.10"},
				Forward: []Forward{{From: ".", To: []string{"__PILLAR__UPSTREAM__SERVERS__"}}}},
		}, 0},
		{"broken.Corefile", []CoreServer{
			{Zones: []string{".:53"}, Cache: true, CacheTTL: "30", Forward: []Forward{{From: ".", To: []string{"8.8.8.8"}, PreferUDP: true}}},
		}, 3}, // the stray line, the extra }, the unclosed block
	} {
		c := readCorefile(t, tc.file)
		if !reflect.DeepEqual(c.Servers, tc.want) {
			t.Errorf("%s: servers\n got %+v\nwant %+v", tc.file, c.Servers, tc.want)
		}
		if len(c.Problems) != tc.problems {
			t.Errorf("%s: problems %q, want %d", tc.file, c.Problems, tc.problems)
		}
	}
}

func TestCorefileHelpers(t *testing.T) {
	if a := readCorefile(t, "autopath.Corefile").Autopath(); a == nil || a.PodsMode != "verified" {
		t.Errorf("autopath: got %+v", a)
	}
	if a := readCorefile(t, "kubeadm.Corefile").Autopath(); a != nil {
		t.Errorf("kubeadm has no autopath, got %+v", a)
	}
	if got := readCorefile(t, "nodelocal.Corefile").ForceTCP(); !reflect.DeepEqual(got, []string{"10.96.133.7", "10.96.133.7"}) {
		t.Errorf("force_tcp targets: %v", got)
	}
	s := readCorefile(t, "nodelocal.Corefile").Servers[0].Summary()
	for _, want := range []string{"cluster.local:53", "force_tcp", "bind 169.254.20.10"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
}
