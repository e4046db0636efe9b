// Package hostcheck finds out, on the running host, which kernel features the
// lab's axis values need: IPVS (kube-proxy ipvs), netem (tc delays), the
// openvswitch datapath (Weave Net's fastdp), IPIP and VXLAN (Calico's
// encapsulations) and the NFQUEUE target (the race emulator). It detects,
// never assumes: each feature is tried where it can be (a throwaway network
// namespace), and the kernel's own configuration (/proc/config.gz) explains
// an absence. NotRun turns a cluster shape into "runs" or the reason it
// cannot run here.
package hostcheck

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Feature is a kernel feature an axis value needs.
type Feature string

const (
	IPVS        Feature = "IPVS"
	Netem       Feature = "netem"
	OpenvSwitch Feature = "openvswitch"
	IPIP        Feature = "IPIP"
	VXLAN       Feature = "VXLAN"
	NFQueue     Feature = "NFQUEUE"
)

// Features lists every feature Probe checks, in report order.
var Features = []Feature{IPVS, Netem, OpenvSwitch, IPIP, VXLAN, NFQueue}

// NeededBy says, for people, which axis value needs each feature.
var NeededBy = map[Feature]string{
	IPVS:        "kubeProxy ipvs",
	Netem:       "tc delays (the agent queues instead)",
	OpenvSwitch: "podNetwork weave, fastdp (else sleeve)",
	IPIP:        "podNetwork calico, IPIP mode (else VXLAN)",
	VXLAN:       "podNetwork calico, VXLAN mode",
	NFQueue:     "the race emulator",
}

// configOption is the kernel option that builds each feature.
var configOption = map[Feature]string{
	IPVS:        "CONFIG_IP_VS",
	Netem:       "CONFIG_NET_SCH_NETEM",
	OpenvSwitch: "CONFIG_OPENVSWITCH",
	IPIP:        "CONFIG_NET_IPIP",
	VXLAN:       "CONFIG_VXLAN",
	NFQueue:     "CONFIG_NETFILTER_XT_TARGET_NFQUEUE",
}

// State is what the probe found.
type State string

const (
	Present State = "present"
	Absent  State = "absent"
	Unknown State = "unknown" // could not be tried (not root) and the kernel's configuration does not say
)

// Finding is one feature's state and how it was found.
type Finding struct {
	Feature  Feature `json:"feature"`
	State    State   `json:"state"`
	Evidence string  `json:"evidence"` // what was seen: the live try, or the kernel option
}

// Reason is the one-line reason a cell that needs the feature cannot run,
// e.g. "kernel lacks IPVS: CONFIG_IP_VS not set"; "" when present.
func (f Finding) Reason() string {
	switch f.State {
	case Present:
		return ""
	case Absent:
		return fmt.Sprintf("kernel lacks %s: %s", f.Feature, f.Evidence)
	default:
		return fmt.Sprintf("kernel support for %s unknown: %s", f.Feature, f.Evidence)
	}
}

// Kernel is what Probe found on this host.
type Kernel struct {
	Release  string    `json:"release"`
	Findings []Finding `json:"findings"`
}

// Finding returns the finding for f (Unknown if f was not probed).
func (k Kernel) Finding(f Feature) Finding {
	for _, x := range k.Findings {
		if x.Feature == f {
			return x
		}
	}
	return Finding{Feature: f, State: Unknown, Evidence: "not probed"}
}

// Has says whether f was found present.
func (k Kernel) Has(f Feature) bool { return k.Finding(f).State == Present }

// Probe checks every feature on the running kernel. As root it tries the
// namespace-bound ones (netem, IPIP, VXLAN, NFQUEUE) in a network namespace
// it creates and removes; otherwise it goes by the kernel's configuration.
func Probe(ctx context.Context) (Kernel, error) {
	h := host{proc: "/proc", root: os.Geteuid() == 0}
	return h.probe(ctx)
}

// host is where the probe looks: the proc folder (a fake one in tests) and
// whether it may create network namespaces.
type host struct {
	proc string
	root bool
	// tryInNetns runs the namespace tries; nil means the real ones.
	tryInNetns func(ctx context.Context) (map[Feature]live, error)
	// genlFamilies lists generic netlink families; nil means the kernel's.
	genlFamilies func() ([]string, error)
}

func (h host) probe(ctx context.Context) (Kernel, error) {
	k := Kernel{Release: strings.TrimSpace(readString(h.proc + "/sys/kernel/osrelease"))}
	cfg, cfgErr := readKernelConfig(h.proc + "/config.gz")
	// Without /proc/modules the kernel loads no modules: what is not built in
	// cannot be added, so an absence is final.
	modular := exists(h.proc + "/modules")

	tries := map[Feature]live{
		IPVS:        h.ipvs(),
		OpenvSwitch: h.openvswitch(),
	}
	if h.root {
		try := h.tryInNetns
		if try == nil {
			try = tryInThrowawayNetns
		}
		got, err := try(ctx)
		if err != nil {
			return k, fmt.Errorf("kernel probe: %w", err)
		}
		for f, l := range got {
			tries[f] = l
		}
	} else {
		for _, f := range []Feature{Netem, IPIP, VXLAN, NFQueue} {
			tries[f] = live{state: Unknown, seen: "not tried: creating a network namespace needs root", notTried: true}
		}
	}
	for _, f := range Features {
		k.Findings = append(k.Findings, decide(f, tries[f], cfg, cfgErr == nil, modular))
	}
	return k, nil
}

// live is the outcome of trying a feature on the running kernel.
type live struct {
	state State  // Present, Absent, or Unknown when it could not be tried or said nothing clear
	seen  string // what the try showed (a path, a command's error)
	// notTried marks an Unknown that comes from not trying at all (not
	// root): only then does the configuration stand in for the try. A try
	// that failed for another reason stays unknown: it is a problem to show.
	notTried bool
}

// decide combines a live try with the kernel's configuration. The live try
// decides; the configuration explains an absence and stands in for a try
// that could not run.
func decide(f Feature, l live, cfg kernelConfig, haveCfg, modular bool) Finding {
	opt := configOption[f]
	val, set := cfg[opt]
	switch l.state {
	case Present:
		return Finding{Feature: f, State: Present, Evidence: l.seen}
	case Absent:
		switch {
		case haveCfg && !set:
			return Finding{Feature: f, State: Absent, Evidence: opt + " not set"}
		case haveCfg && val == "m" && !modular:
			return Finding{Feature: f, State: Absent, Evidence: opt + "=m but this kernel loads no modules"}
		case haveCfg && val == "m":
			return Finding{Feature: f, State: Absent, Evidence: opt + "=m and the module is not loaded (" + l.seen + ")"}
		case !haveCfg && !modular:
			return Finding{Feature: f, State: Absent, Evidence: opt + " not built in (" + l.seen + "; this kernel loads no modules)"}
		default:
			return Finding{Feature: f, State: Absent, Evidence: l.seen}
		}
	}
	if !l.notTried {
		return Finding{Feature: f, State: Unknown, Evidence: l.seen}
	}
	// Not tried: go by the configuration if there is one.
	switch {
	case haveCfg && val == "y":
		return Finding{Feature: f, State: Present, Evidence: opt + "=y (" + l.seen + ")"}
	case haveCfg && !set:
		return Finding{Feature: f, State: Absent, Evidence: opt + " not set"}
	case haveCfg && val == "m" && !modular:
		return Finding{Feature: f, State: Absent, Evidence: opt + "=m but this kernel loads no modules"}
	}
	return Finding{Feature: f, State: Unknown, Evidence: l.seen}
}

// ipvs: the IPVS core registers /proc/net/ip_vs and its sysctls in every
// network namespace; neither exists without it.
func (h host) ipvs() live {
	for _, p := range []string{h.proc + "/net/ip_vs", h.proc + "/sys/net/ipv4/vs"} {
		if exists(p) {
			return live{state: Present, seen: p + " exists"}
		}
	}
	return live{state: Absent, seen: "no " + h.proc + "/net/ip_vs"}
}

// openvswitch: the datapath registers the generic netlink family
// "ovs_datapath" (what Weave Net's fastdp talks to).
func (h host) openvswitch() live {
	list := h.genlFamilies
	if list == nil {
		list = genlFamilyNames
	}
	names, err := list()
	if err != nil {
		return live{state: Unknown, seen: "list generic netlink families: " + err.Error()}
	}
	for _, n := range names {
		if n == "ovs_datapath" {
			return live{state: Present, seen: "generic netlink family ovs_datapath registered"}
		}
	}
	return live{state: Absent, seen: "no generic netlink family ovs_datapath"}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
