// Package clusterfacts reads what a cluster is from its API objects, with
// pure functions over recorded objects: kube-proxy's mode, the cluster DNS
// Service and its endpoints, the pod networks by their DaemonSets. Both
// `labrun diagnose` (pkg/diagnose) and the runner on an existing cluster
// (pkg/cluster/existing) read a cluster's shape with them; neither imports
// the other.
package clusterfacts
