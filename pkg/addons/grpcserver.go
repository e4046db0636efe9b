package addons

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/cluster"
)

const (
	// GRPCServerName names the lab gRPC server's Deployment and Service.
	GRPCServerName = "labgrpc"
	// GRPCPort is the port the server listens on and the Service exposes:
	// the probe's default --grpc-port.
	GRPCPort = 50051
	// GRPCTarget is the short name gRPC probes look up: two labels, so under
	// ndots:5 the resolver walks the pod's search list (the pod's namespace
	// first, NXDOMAIN, then svc.cluster.local) as in the seed.
	GRPCTarget = GRPCServerName + "." + namespace
)

// GRPCServerObjects are the lab gRPC server's Deployment and Service: the
// glibc probe image running `probe --serve-grpc`, ready once its port accepts.
func GRPCServerObjects(image string) (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": GRPCServerName}
	one := int32(1)
	port := intstr.FromInt32(GRPCPort)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: GRPCServerName, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            GRPCServerName,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"--serve-grpc", "[::]:" + strconv.Itoa(GRPCPort)},
						Ports:           []corev1.ContainerPort{{Name: "grpc", ContainerPort: GRPCPort, Protocol: corev1.ProtocolTCP}},
						// The Python server takes a moment to bind; until it
						// does, calls would fail for a reason that is not DNS.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}},
							PeriodSeconds: 1,
						},
					}},
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: GRPCServerName, Namespace: namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "grpc", Port: GRPCPort, TargetPort: port, Protocol: corev1.ProtocolTCP}},
		},
	}
	return d, svc
}

// GRPCServer deploys the lab gRPC server (image: the probe-glibc image,
// already loaded into the nodes) and waits until it is ready. It returns the
// Service's cluster IP.
func GRPCServer(ctx context.Context, cs kubernetes.Interface, image string) (string, error) {
	d, svc := GRPCServerObjects(image)
	if _, err := cs.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create lab gRPC server deployment: %w", err)
	}
	created, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = cs.CoreV1().Services(namespace).Get(ctx, GRPCServerName, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("create lab gRPC server service: %w", err)
	}
	if err := cluster.WaitDeployment(ctx, cs, namespace, GRPCServerName, timeout); err != nil {
		return "", fmt.Errorf("lab gRPC server: %w", err)
	}
	return created.Spec.ClusterIP, nil
}
