// Command labnet is the lab's default pod network, a small stand-in for
// kindnetd (which cannot be built or pulled on the lab's machines). On each
// node it writes a CNI configuration (ptp + host-local over the node's pod
// CIDR), routes every other node's pod CIDR through that node, and masquerades
// traffic that leaves the pod network. It is what the cluster's pods use when a
// scenario asks for podNetwork: default.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	cniDir   = "/etc/cni/net.d"
	cniFile  = "10-labnet.conflist"
	resync   = 10 * time.Second
	ruleNote = "labnet: masquerade traffic leaving the pod network"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatalf("labnet: %v", err)
	}
}

func run(ctx context.Context) error {
	node, subnet := os.Getenv("NODE_NAME"), os.Getenv("POD_SUBNET")
	if node == "" || subnet == "" {
		return fmt.Errorf("NODE_NAME and POD_SUBNET must be set")
	}
	_, podNet, err := net.ParseCIDR(subnet)
	if err != nil {
		return fmt.Errorf("POD_SUBNET %q: %w", subnet, err)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	// The pod network comes up before kube-proxy has programmed the service
	// VIP on the node: reach the API server where kind says it is (its node
	// address), as kindnetd does, not through a VIP that leads off the node.
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		cfg.Host = "https://" + ep
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// MASQUERADE_RANDOM_FULLY is set by the lab's random-fully mitigation.
	if err := masquerade(podNet.String(), os.Getenv("MASQUERADE_RANDOM_FULLY") == "true"); err != nil {
		return err
	}
	// Sync at once when a node changes (a node that joins gets its pod CIDR
	// and address: until every other node routes to it, replies to its pods
	// leave by the default route and are lost), and every resync anyway.
	for {
		rv, err := sync(ctx, client, node)
		if err != nil {
			log.Printf("sync: %v", err)
		}
		if !nodeChange(ctx, client, rv, resync) && ctx.Err() != nil {
			return nil
		}
	}
}

// nodeChange waits until a node changes after resource version rv (any
// change when rv is ""), ctx ends or d passes, and says whether a node
// changed.
func nodeChange(ctx context.Context, client kubernetes.Interface, rv string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		<-ctx.Done()
		return false
	}
	defer w.Stop()
	select {
	case _, ok := <-w.ResultChan():
		return ok
	case <-ctx.Done():
		return false
	}
}

// sync writes this node's CNI configuration and routes every other node's
// pod CIDR; it returns the node list's resource version.
func sync(ctx context.Context, client kubernetes.Interface, self string) (string, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if n.Spec.PodCIDR == "" {
			continue
		}
		if n.Name == self {
			if err := writeCNIConfig(cniDir, n.Spec.PodCIDR); err != nil {
				return "", err
			}
			continue
		}
		if err := route(n); err != nil {
			log.Printf("route to %s: %v", n.Name, err)
		}
	}
	return nodes.ResourceVersion, nil
}

// route sends node n's pod CIDR to n's internal address.
func route(n corev1.Node) error {
	r, err := routeFor(n)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(r)
}

// routeFor is the route to node n's pods: its pod CIDR via its IPv4 internal address.
func routeFor(n corev1.Node) (*netlink.Route, error) {
	_, dst, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return nil, err
	}
	var gw net.IP
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil {
				gw = ip
			}
		}
	}
	if gw == nil {
		return nil, fmt.Errorf("no IPv4 internal address yet")
	}
	return &netlink.Route{Dst: dst, Gw: gw}, nil
}

func writeCNIConfig(dir, podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "labnet",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    1500,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, cniFile)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	log.Printf("CNI configuration for %s written", podCIDR)
	return os.Rename(tmp, path)
}

// iptablesCmd is how labnet runs iptables (tests run it in a network namespace).
var iptablesCmd = []string{"iptables"}

func iptables(args ...string) *exec.Cmd {
	return exec.Command(iptablesCmd[0], append(iptablesCmd[1:], args...)...)
}

// masqueradeRule is the one rule labnet keeps: pod traffic to anything
// outside the pod network leaves with the node's address; randomFully picks
// the source port at random (the SNAT port race's fix, the random-fully
// mitigation).
func masqueradeRule(podNet string, randomFully bool) []string {
	rule := []string{"POSTROUTING", "-s", podNet, "!", "-d", podNet,
		"-m", "comment", "--comment", ruleNote, "-j", "MASQUERADE"}
	if randomFully {
		rule = append(rule, "--random-fully")
	}
	return rule
}

// masquerade makes labnet's rule the one asked for: the other variant, left
// by an earlier labnet on this node, is removed.
func masquerade(podNet string, randomFully bool) error {
	other := append([]string{"-t", "nat", "-D"}, masqueradeRule(podNet, !randomFully)...)
	for iptables(other...).Run() == nil {
	}
	rule := masqueradeRule(podNet, randomFully)
	check := append([]string{"-t", "nat", "-C"}, rule...)
	if iptables(check...).Run() == nil {
		return nil
	}
	add := append([]string{"-t", "nat", "-A"}, rule...)
	if out, err := iptables(add...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %v: %v: %s", add, err, out)
	}
	log.Printf("masquerade rule: %v", rule)
	return nil
}
