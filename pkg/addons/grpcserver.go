package addons

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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

func grpcServer(image string) labService {
	return labService{
		name:  GRPCServerName,
		image: image,
		args:  []string{"--serve-grpc", "[::]:" + strconv.Itoa(GRPCPort)},
		ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: GRPCPort, Protocol: corev1.ProtocolTCP}},
		// The Python server takes a moment to bind; until it does, calls
		// would fail for a reason that is not DNS.
		readiness: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(GRPCPort)}},
			PeriodSeconds: 1,
		},
	}
}

// GRPCServerObjects are the lab gRPC server's Deployment and Service: the
// glibc probe image running `probe --serve-grpc`, ready once its port accepts.
func GRPCServerObjects(image string) (*appsv1.Deployment, *corev1.Service) {
	return grpcServer(image).objects()
}
