package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// kubelet (and kube-proxy) write host-wide sysctls from inside the privileged
// nodes, whose /proc/sys is the host's (FACTS.md). The lab records them before
// its first cluster and puts them back when its last cluster is gone.
var hostSysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/netfilter/nf_conntrack_max",
	// The neighbour table is one per kernel, its thresholds set only from the
	// host's network namespace (a node has no neigh/default): the arp-gc
	// mitigation raises them with SetHostSysctl.
	"net/ipv4/neigh/default/gc_thresh1", "net/ipv4/neigh/default/gc_thresh2", "net/ipv4/neigh/default/gc_thresh3",
}

// SetHostSysctl sets a host-wide sysctl (one of those the lab records, so
// the last cluster's deletion restores it) for a cluster's sake, and returns
// the value it replaced.
func SetHostSysctl(key, value string) (string, error) {
	if !slices.Contains(hostSysctls, key) {
		return "", fmt.Errorf("host sysctl %s: not one the lab records and restores (%s)", key, strings.Join(hostSysctls, ", "))
	}
	if err := SaveHostSysctls(); err != nil {
		return "", err
	}
	path := "/proc/sys/" + key
	old, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("host sysctl %s: %w", key, err)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return "", fmt.Errorf("host sysctl %s = %s: %w", key, value, err)
	}
	return strings.TrimSpace(string(old)), nil
}

func sysctlFile() string { return filepath.Join(os.TempDir(), "labrun-clusters", "host-sysctls.json") }

// SaveHostSysctls records the values unless a record exists (an earlier
// cluster of the lab is still up, or was not cleaned: the first record wins).
func SaveHostSysctls() error {
	if _, err := os.Stat(sysctlFile()); err == nil {
		return nil
	}
	vals := map[string]string{}
	for _, k := range hostSysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			vals[k] = strings.TrimSpace(string(b))
		}
	}
	b, _ := json.MarshalIndent(vals, "", "  ")
	if err := os.MkdirAll(filepath.Dir(sysctlFile()), 0o700); err != nil {
		return err
	}
	return os.WriteFile(sysctlFile(), b, 0o600)
}

// RestoreHostSysctls writes back what SaveHostSysctls recorded, says what it
// changed, and forgets the record.
func RestoreHostSysctls(progress io.Writer) error {
	b, err := os.ReadFile(sysctlFile())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	vals := map[string]string{}
	if err := json.Unmarshal(b, &vals); err != nil {
		return fmt.Errorf("%s: %w", sysctlFile(), err)
	}
	var errs []string
	// In the recorded order, not the map's: the same on every restore.
	for _, k := range hostSysctls {
		want, ok := vals[k]
		if !ok {
			continue
		}
		cur, err := os.ReadFile("/proc/sys/" + k)
		if err != nil || strings.TrimSpace(string(cur)) == want {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+k, []byte(want), 0o644); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		fmt.Fprintf(progress, "host sysctl %s restored: %s -> %s\n", strings.ReplaceAll(k, "/", "."), strings.TrimSpace(string(cur)), want)
	}
	if len(errs) > 0 {
		return fmt.Errorf("restore host sysctls: %s", strings.Join(errs, "; "))
	}
	return os.Remove(sysctlFile())
}

// HostSysctlKeys are the host sysctls (under /proc/sys) the lab records
// before its first cluster and restores after its last.
func HostSysctlKeys() []string { return slices.Clone(hostSysctls) }
