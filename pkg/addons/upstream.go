// Package addons installs what the lab adds to a fresh cluster: the lab
// upstream DNS server and the CoreDNS configuration that makes the cluster's
// DNS hermetic.
package addons

import (
	"context"
	"fmt"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
)

const (
	// UpstreamName names the lab upstream's Deployment and Service.
	UpstreamName = "labdns"
	// Zone is the synthetic outside zone the lab upstream serves.
	Zone      = "lab.example."
	namespace = "kube-system"
	timeout   = 2 * time.Minute
)

// LabUpstream deploys the lab upstream DNS server (image: the labdns image,
// already loaded into the nodes) behind a Service, and points CoreDNS's
// forwarder at it instead of the node's resolv.conf, so no lookup leaves the
// lab. Every name of Zone answers with the A record a (the lab gRPC server's
// Service IP, so gRPC probes can call any outside name). It returns the
// upstream Service's cluster IP.
func LabUpstream(ctx context.Context, cs kubernetes.Interface, image, a string) (string, error) {
	ip, err := labService{
		name:  UpstreamName,
		image: image,
		args:  []string{"--listen", ":53", "--zone", Zone, "--a", a},
		ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
		},
	}.deploy(ctx, cs)
	if err != nil {
		return "", fmt.Errorf("lab upstream: %w", err)
	}
	if err := forwardCoreDNS(ctx, cs, ip); err != nil {
		return "", err
	}
	return ip, nil
}

var forwardLine = regexp.MustCompile(`forward \. [^\s{]+`)

// ForwardCorefile points a Corefile's forward plugin at upstream.
func ForwardCorefile(corefile, upstream string) (string, error) {
	if !forwardLine.MatchString(corefile) {
		return "", fmt.Errorf("coredns Corefile has no `forward .` line to point at the lab upstream")
	}
	return forwardLine.ReplaceAllString(corefile, "forward . "+upstream), nil
}

// forwardCoreDNS rewrites CoreDNS's Corefile and restarts it, then waits.
func forwardCoreDNS(ctx context.Context, cs kubernetes.Interface, upstream string) error {
	cms := cs.CoreV1().ConfigMaps(namespace)
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("coredns configmap: %w", err)
	}
	corefile, err := ForwardCorefile(cm.Data["Corefile"], upstream)
	if err != nil {
		return err
	}
	if corefile == cm.Data["Corefile"] {
		return nil
	}
	cm.Data["Corefile"] = corefile
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update coredns configmap: %w", err)
	}
	// Restart rather than wait for the reload plugin, so that when this
	// returns every CoreDNS replica forwards to the lab upstream.
	deploys := cs.AppsV1().Deployments(namespace)
	d, err := deploys.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["labrun.dev/upstream"] = upstream
	if _, err := deploys.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("restart coredns: %w", err)
	}
	return cluster.WaitDeployment(ctx, cs, namespace, "coredns", timeout)
}
