package diagnose

import "labrun.dev/labrun/pkg/clusterfacts"

// The fact readers diagnose shares with the runner on an existing cluster
// live in pkg/clusterfacts; these names keep diagnose's API as it was.
type (
	KubeProxy   = clusterfacts.KubeProxy
	DNSService  = clusterfacts.DNSService
	DNSEndpoint = clusterfacts.DNSEndpoint
	CNI         = clusterfacts.CNI
)

var (
	KubeProxyMode = clusterfacts.KubeProxyMode
	DNSEndpoints  = clusterfacts.DNSEndpoints
	FindCNIs      = clusterfacts.FindCNIs
	flagValue     = clusterfacts.FlagValue
	kubeProxySpec = clusterfacts.KubeProxySpec
)
