package addons

import (
	"strings"
	"testing"
)

// kubeadmCorefile136 is kubeadm v1.36's Corefile as a cluster has it after
// the lab pointed it at its upstream (cmd/kubeadm/app/phases/addons/dns,
// DNSDomain cluster.local).
const kubeadmCorefile136 = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . 10.96.200.7 {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`

const kubeadmCorefile136Autopath = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    autopath @kubernetes
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods verified
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . 10.96.200.7 {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`

func TestAutopathCorefile(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{name: "kubeadm v1.36", in: kubeadmCorefile136, want: kubeadmCorefile136Autopath},
		{name: "kubeadm without cache block", in: kubeadmCorefile, want: strings.NewReplacer(
			"    kubernetes", "    autopath @kubernetes\n    kubernetes", "pods insecure", "pods verified").Replace(kubeadmCorefile)},
		{name: "already rewritten", in: kubeadmCorefile136Autopath, want: kubeadmCorefile136Autopath},
		{name: "pods disabled", in: ".:53 {\n  kubernetes cluster.local {\n    pods disabled\n  }\n}\n",
			want: ".:53 {\n  autopath @kubernetes\n  kubernetes cluster.local {\n    pods verified\n  }\n}\n"},
		{name: "block without pods line", in: ".:53 {\n    kubernetes cluster.local {\n       ttl 30\n    }\n}\n",
			want: ".:53 {\n    autopath @kubernetes\n    kubernetes cluster.local {\n       ttl 30\n       pods verified\n    }\n}\n"},
		{name: "plugin without block", in: ".:53 {\n    kubernetes cluster.local\n    forward . 1.2.3.4\n}\n",
			want: ".:53 {\n    autopath @kubernetes\n    kubernetes cluster.local {\n       pods verified\n    }\n    forward . 1.2.3.4\n}\n"},
		{name: "no kubernetes plugin", in: ".:53 {\n    errors\n    forward . 1.2.3.4\n}\n", wantErr: "no kubernetes plugin"},
		{name: "autopath mentioned but no kubernetes plugin", in: ".:53 {\n    autopath @kubernetes\n}\n", wantErr: "no kubernetes plugin"},
		{name: "unclosed block", in: ".:53 {\n    kubernetes cluster.local {\n       pods insecure\n", wantErr: "never closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AutopathCorefile(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q; got\n%s", err, tc.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			again, err := AutopathCorefile(got)
			if err != nil || again != got {
				t.Errorf("a second rewrite changed it (%v):\n%s", err, again)
			}
		})
	}
}
