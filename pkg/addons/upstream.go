// Package addons installs what the lab adds to a fresh cluster: the lab
// upstream DNS server and the CoreDNS configuration that makes the cluster's
// DNS hermetic.
package addons

import (
	"context"
	"fmt"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
// lab. It returns the upstream Service's cluster IP.
func LabUpstream(ctx context.Context, cs kubernetes.Interface, image string) (string, error) {
	labels := map[string]string{"app": UpstreamName}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: UpstreamName, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            UpstreamName,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"--listen", ":53", "--zone", Zone},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
					}},
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: UpstreamName, Namespace: namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create lab upstream deployment: %w", err)
	}
	created, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = cs.CoreV1().Services(namespace).Get(ctx, UpstreamName, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("create lab upstream service: %w", err)
	}
	if err := cluster.WaitDeployment(ctx, cs, namespace, UpstreamName, timeout); err != nil {
		return "", fmt.Errorf("lab upstream: %w", err)
	}
	ip := created.Spec.ClusterIP
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
