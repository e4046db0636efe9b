package addons

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
)

// serverTolerations are the taints a cluster server (DNS, the lab's own)
// tolerates, as kubeadm's CoreDNS does: the control plane's, and
// CriticalAddonsOnly. Not cluster.CellTaint: where workers are kept for
// cells side by side, the servers go to the control plane and no cell's
// worker carries another cell's DNS traffic.
func serverTolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
		{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
}

// labService is one of the lab's own servers: a one-replica Deployment in
// kube-system, its image already loaded into the nodes, behind a Service of
// the same name exposing each of its ports.
type labService struct {
	name, image string
	args        []string
	ports       []corev1.ContainerPort
	readiness   *corev1.Probe
}

func (s labService) objects() (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": s.name}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            s.name,
						Image:           s.image,
						ImagePullPolicy: corev1.PullNever,
						Args:            s.args,
						Ports:           s.ports,
						ReadinessProbe:  s.readiness,
					}},
					Tolerations: serverTolerations(),
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: namespace, Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: labels},
	}
	for _, p := range s.ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort), Protocol: p.Protocol,
		})
	}
	return d, svc
}

// apply applies the Deployment and Service and returns the Service's
// cluster IP; the server may not be ready yet (wait).
func (s labService) apply(ctx context.Context, cs kubernetes.Interface) (string, error) {
	d, svc := s.objects()
	if _, err := apply(ctx, cs.AppsV1().Deployments(namespace), d); err != nil {
		return "", fmt.Errorf("%s: %w", s.name, err)
	}
	created, err := apply(ctx, cs.CoreV1().Services(namespace), svc)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.name, err)
	}
	return created.Spec.ClusterIP, nil
}

// wait returns once the server's Deployment is ready.
func (s labService) wait(ctx context.Context, cs kubernetes.Interface) error {
	if err := cluster.WaitDeployment(ctx, cs, namespace, s.name, timeout); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}
