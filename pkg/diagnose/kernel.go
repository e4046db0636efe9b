package diagnose

import (
	"fmt"
	"regexp"
	"strconv"
)

// KernelFixes is what a kernel release predicts for the conntrack insert race
// (PHENOMENON.md, kernel side). It is a prediction from the version number
// only: distributions backport netfilter fixes (RHEL 8's 4.18 carries many),
// so a node's counters or a measurement decide, never this.
type KernelFixes struct {
	Release string `json:"release"`
	// Known is false when the release did not parse as MAJOR.MINOR.
	Known bool `json:"known"`
	Major int  `json:"major,omitempty"`
	Minor int  `json:"minor,omitempty"`
	// EqualNATResolved: a clash of two entries whose NAT result matches is
	// resolved (commit ed07d9a021df, 4.19; completed by 4e35c1cb9460, 5.0).
	EqualNATResolved bool `json:"equalNatResolved"`
	// DifferentBackendsResolved: clashing UDP entries that got different
	// DNAT backends are both kept (commit 6a757c07e51f, 5.6).
	DifferentBackendsResolved bool `json:"differentBackendsResolved"`
	// Clashres: /proc/net/stat/nf_conntrack has the clashres column and
	// insert_failed stops counting resolved clashes (commit bc92470413f3, 5.10).
	Clashres bool `json:"clashres"`
	// Drops says which clashes are predicted to drop a packet.
	Drops string `json:"drops"`
}

// Drop classes, as the race emulator's profiles name them.
const (
	DropsEvery             = "every clash drops a packet (like emulator profile pre-5.0)"
	DropsDifferentBackends = "clashes whose packets got different DNS backends drop a packet (like emulator profile 5.0-5.5)"
	DropsNone              = "no clash drops a packet: clashes are resolved"
	DropsUnknown           = "unknown: the release did not parse"
)

var releaseRE = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

// atLeast reports whether major.minor ≥ wantMajor.wantMinor.
func atLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || (major == wantMajor && minor >= wantMinor)
}

// PredictKernel maps a kernel release (NodeInfo.KernelVersion, e.g.
// "5.10.223-212.873.amzn2.x86_64") to the fixes it is predicted to carry.
func PredictKernel(release string) KernelFixes {
	k := KernelFixes{Release: release, Drops: DropsUnknown}
	m := releaseRE.FindStringSubmatch(release)
	if m == nil {
		return k
	}
	k.Major, _ = strconv.Atoi(m[1])
	k.Minor, _ = strconv.Atoi(m[2])
	k.Known = true
	k.EqualNATResolved = atLeast(k.Major, k.Minor, 4, 19)
	k.DifferentBackendsResolved = atLeast(k.Major, k.Minor, 5, 6)
	k.Clashres = atLeast(k.Major, k.Minor, 5, 10)
	switch {
	case k.DifferentBackendsResolved:
		k.Drops = DropsNone
	case k.EqualNATResolved:
		k.Drops = DropsDifferentBackends
	default:
		k.Drops = DropsEvery
	}
	return k
}

// Summary is one line for the text output.
func (k KernelFixes) Summary() string {
	if !k.Known {
		return fmt.Sprintf("kernel %q: %s", k.Release, k.Drops)
	}
	col := "no clashres column: insert_failed also counts resolved clashes"
	if k.Clashres {
		col = "clashres column"
	}
	return fmt.Sprintf("kernel %d.%d: predicted: %s; %s (from the version alone: distributions backport fixes)", k.Major, k.Minor, k.Drops, col)
}
