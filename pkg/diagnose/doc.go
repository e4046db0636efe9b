// Package diagnose tells a user whether their own cluster has the
// "DNS lookups take 5 s" problem (the conntrack insert race) and which fix
// works there. It reads facts from API objects with zero footprint (each
// reader a pure function over recorded objects: kubeproxy.go, dnsendpoints.go,
// corefile.go, nodelocal.go, cni.go, cilium.go, kernel.go), gathers them with
// client-go (gather.go), predicts from them (predict.go), works out what the
// caller may do (permissions.go), and, tier permitting, measures with the
// lab's probe images (measure.go). It never calls docker or kind: it has the
// kubeconfig only.
package diagnose
