package addons

import (
	"strings"
	"testing"
)

// kubeadm's Corefile, as CoreDNS is deployed by kubeadm v1.36.
const kubeadmCorefile = `.:53 {
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
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

func TestForwardCorefile(t *testing.T) {
	got, err := ForwardCorefile(kubeadmCorefile, "10.96.12.34")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "forward . 10.96.12.34 {\n       max_concurrent 1000") || strings.Contains(got, "/etc/resolv.conf") {
		t.Errorf("Corefile not pointed at the lab upstream:\n%s", got)
	}
	again, err := ForwardCorefile(got, "10.96.12.34")
	if err != nil || again != got {
		t.Errorf("a second rewrite changed it: %v\n%s", err, again)
	}
	if _, err := ForwardCorefile(".:53 {\n    errors\n}\n", "10.96.12.34"); err == nil {
		t.Error("a Corefile without a forward line was accepted: the cluster's DNS would not be hermetic")
	}
}
