package existing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/workload"
)

// NodePod is the privileged pod through which the lab runs commands on a
// node of an existing cluster: hostNetwork (the node's conntrack counters,
// its DNS traffic), hostPID (/proc/1 is the node's init, whose start time
// tells a restarted node), privileged (tcpdump, iptables-save). Its
// NodeContainer is the glibc probe image (sh, cat, tcpdump); its
// ToolsContainer, when the labagent image is known, has iptables. Both
// sleep: every command is a pod exec.
func NodePod(ns, run string, index int, node string, imgs map[string]string) *corev1.Pod {
	sleep := []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"}
	container := func(name, image string) corev1.Container {
		return corev1.Container{
			Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Command: sleep,
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
			}},
		}
	}
	containers := []corev1.Container{container(NodeContainer, imgs["probe-glibc"])}
	if imgs["labagent"] != "" {
		containers = append(containers, container(ToolsContainer, imgs["labagent"]))
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s%d", NodePodPrefix, index), Namespace: ns, Labels: labels(run),
			Annotations: map[string]string{"labrun.dev/node": node},
		},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			HostNetwork:                   true,
			HostPID:                       true,
			DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(int64(NodePodLifetime.Seconds())),
			TerminationGracePeriodSeconds: ptr.To(int64(2)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:                    containers,
		},
	}
}

// startNodePods creates a node pod on each node and waits until each runs;
// it returns them by node.
func (p *Provider) startNodePods(ctx context.Context, ns, run string, nodes []cluster.Node, imgs map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for i, n := range nodes {
		pod := NodePod(ns, run, i, n.Name, imgs)
		if _, err := p.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("existing cluster: create node pod on %s: %w", n.Name, err)
		}
		out[n.Name] = pod.Name
	}
	for node, pod := range out {
		if err := workload.WaitContainerStarted(ctx, p.cs, ns, pod, p.o.StartTimeout); err != nil {
			return nil, fmt.Errorf("existing cluster: node pod on %s: %w", node, err)
		}
	}
	fmt.Fprintf(p.o.Progress, "existing cluster: %d privileged node pods running in %s (--allow-privileged)\n", len(out), ns)
	return out, nil
}

// execFunc runs argv in a container of a pod and returns its stdout.
type execFunc func(ctx context.Context, ns, pod, container string, stdin io.Reader, argv []string) ([]byte, error)

// podRunner runs node commands by exec in the node's node pod: in its
// ToolsContainer when the command calls iptables (the probe image has
// none), else in its NodeContainer.
type podRunner struct {
	ns    string
	pods  map[string]string // node → pod
	tools bool
	exec  execFunc
}

func (r podRunner) Run(ctx context.Context, node string, stdin io.Reader, argv ...string) ([]byte, error) {
	pod, ok := r.pods[node]
	if !ok {
		return nil, &cluster.NodeAccessError{Reason: fmt.Sprintf("node %s has no node pod (the lab probes other nodes only)", node)}
	}
	container := ContainerFor(argv)
	if container == ToolsContainer && !r.tools {
		return nil, fmt.Errorf("on node %s: %s: the node pod has no %s container (no labagent image)", node, strings.Join(argv, " "), ToolsContainer)
	}
	return r.exec(ctx, r.ns, pod, container, stdin, argv)
}

// ContainerFor is the node pod's container a command runs in.
func ContainerFor(argv []string) string {
	for _, a := range argv {
		if strings.Contains(a, "iptables") {
			return ToolsContainer
		}
	}
	return NodeContainer
}

// spdyExec runs commands through the API server's pods/exec, over
// WebSocket, falling back to SPDY (as kubectl does).
func spdyExec(cfg *rest.Config, cs kubernetes.Interface) execFunc {
	return func(ctx context.Context, ns, pod, container string, stdin io.Reader, argv []string) ([]byte, error) {
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{
				Container: container, Command: argv, Stdin: stdin != nil, Stdout: true, Stderr: true,
			}, scheme.ParameterCodec)
		ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			return nil, err
		}
		spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return nil, err
		}
		exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return nil, err
		}
		var stdout, stderr bytes.Buffer
		err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &stdout, Stderr: &stderr})
		if err != nil {
			return stdout.Bytes(), fmt.Errorf("exec in %s/%s (%s): %s: %w: %s", ns, pod, container, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
		}
		return stdout.Bytes(), nil
	}
}
