package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"labrun.dev/labrun/pkg/diagnose"
)

// Bounds of a diagnosis's measurement on a user's cluster: never a load
// test (issue 15).
const (
	maxDiagnoseDuration = 2 * time.Minute
	maxDiagnoseRate     = 50
	maxDiagnoseNodes    = 10
)

type diagnoseFlags struct {
	kubeconfig, context string
	asJSON              bool
	allowPrivileged     bool
	load                diagnose.Load
	glibcImage          string
	muslImage           string
	pullPolicy          string
	exportScenario      string
}

// newDiagnoseCommand is `diagnose`: whether a cluster, given only its
// kubeconfig, has the 5 s DNS problem and which fix works there.
func newDiagnoseCommand(s Streams) *cobra.Command {
	f := diagnoseFlags{load: diagnose.DefaultLoad}
	c := &cobra.Command{
		Use:   "diagnose",
		Short: "Tell whether a cluster (its kubeconfig only) has the 5 s DNS problem, and which fix works there",
		Long: `Diagnose a cluster through its kubeconfig only (client-go; no docker or kind call):

  facts       read-only: node kernels, kube-proxy's mode, the cluster DNS endpoints,
              CoreDNS's Corefile, NodeLocal DNSCache, pod networks, Cilium
  access      SelfSubjectAccessReviews and a server-side dry run of what it would make:
              the deepest tier allowed (facts → probe pods → node counters) and what
              each missing permission costs
  prediction  from the facts and the kernel table (said as predicted: distributions backport)
  measurement probe pods (glibc bare, single-request-reopen, use-vc; musl) against the
              DNS VIP, each DNS pod and NodeLocal DNSCache, bounded in rate and time, in
              one namespace labrun-diag-<id> that is deleted on exit and Ctrl-C
  counters    with --allow-privileged: a hostNetwork pod per node reads
              /proc/net/stat/nf_conntrack around the probes
  verdict     with its evidence and a recommendation, then a check that nothing is left

--duration 0 reads facts only. --export-scenario FILE writes a lab scenario of the
detected shape (its fixes side by side, the nodes' kernels imitated by the race
emulator). The probe images are the lab's (found on a lab cluster's nodes);
elsewhere pass --probe-image and --probe-image-musl. docs/diagnose.md has the
permissions of each tier, with an RBAC manifest for each.

Exit 0 whatever the verdict; 1 when the cluster cannot be reached or the
measurement failed; 2 for bad flags or a kubeconfig that does not load; 130 on
Ctrl-C (after the cleanup).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			cs, err := f.clientset()
			if err != nil {
				return err
			}
			id, err := newDiagnoseID()
			if err != nil {
				return err
			}
			wanted := diagnose.TierProbes
			switch {
			case f.load.Duration == 0:
				wanted = diagnose.TierFacts
			case f.allowPrivileged:
				wanted = diagnose.TierCounters
			}
			r, runErr := diagnose.Run(c.Context(), cs, diagnose.Options{
				ID: id, Wanted: wanted, Load: f.load, Progress: s.Err,
				Images: diagnose.Images{Glibc: f.glibcImage, Musl: f.muslImage, PullPolicy: corev1.PullPolicy(f.pullPolicy)},
			})
			if r != nil {
				if err := writeDiagnosis(s, r, f.asJSON); err != nil {
					return err
				}
				if f.exportScenario != "" {
					if err := os.WriteFile(f.exportScenario, diagnose.ExportScenario(id, r.Facts), 0o644); err != nil {
						return fmt.Errorf("diagnose: --export-scenario: %w", err)
					}
					fmt.Fprintf(s.Err, "diagnose: scenario of this shape written to %s (labrun plan %s lists its cells)\n", f.exportScenario, f.exportScenario)
				}
			}
			if runErr != nil {
				return fmt.Errorf("diagnose: %w", runErr)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context (default: its current context)")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fl.BoolVar(&f.allowPrivileged, "allow-privileged", false, "also run a hostNetwork pod per node to read its conntrack counters")
	fl.DurationVar(&f.load.Duration, "duration", f.load.Duration, fmt.Sprintf("how long each probe pod looks up names (0: facts only; at most %s)", maxDiagnoseDuration))
	fl.Float64Var(&f.load.Rate, "rate", f.load.Rate, fmt.Sprintf("lookups per second per probe pod (at most %d)", maxDiagnoseRate))
	fl.IntVar(&f.load.Nodes, "nodes", f.load.Nodes, fmt.Sprintf("how many nodes to probe (ready workers first; at most %d)", maxDiagnoseNodes))
	fl.StringVar(&f.glibcImage, "probe-image", "", "the glibc probe image (default: the lab's "+diagnose.LabProbeGlibc+" found on the nodes)")
	fl.StringVar(&f.muslImage, "probe-image-musl", "", "the musl probe image (default: the lab's "+diagnose.LabProbeMusl+" found on the nodes)")
	fl.StringVar(&f.exportScenario, "export-scenario", "", "also write a lab scenario of the detected shape to this file (kind shares the host's kernel: the file says so)")
	fl.StringVar(&f.pullPolicy, "pull-policy", string(corev1.PullIfNotPresent), "the probe pods' imagePullPolicy: IfNotPresent, Always or Never")
	return c
}

func (f diagnoseFlags) validate() error {
	switch {
	case f.load.Duration < 0 || f.load.Duration > maxDiagnoseDuration:
		return UsageError{fmt.Errorf("--duration %s: want 0 (facts only) up to %s", f.load.Duration, maxDiagnoseDuration)}
	case f.load.Duration > 0 && f.load.Duration < time.Second:
		return UsageError{fmt.Errorf("--duration %s: want at least 1s (or 0 for facts only)", f.load.Duration)}
	case f.load.Rate <= 0 || f.load.Rate > maxDiagnoseRate:
		return UsageError{fmt.Errorf("--rate %g: want more than 0 and at most %d lookups/s per pod", f.load.Rate, maxDiagnoseRate)}
	case f.load.Nodes < 1 || f.load.Nodes > maxDiagnoseNodes:
		return UsageError{fmt.Errorf("--nodes %d: want 1 to %d", f.load.Nodes, maxDiagnoseNodes)}
	}
	switch corev1.PullPolicy(f.pullPolicy) {
	case corev1.PullIfNotPresent, corev1.PullAlways, corev1.PullNever:
	default:
		return UsageError{fmt.Errorf("--pull-policy %q: want IfNotPresent, Always or Never", f.pullPolicy)}
	}
	return nil
}

// clientset loads the kubeconfig as kubectl does (explicit file, else
// $KUBECONFIG, else ~/.kube/config); one that does not load is bad input.
func (f diagnoseFlags) clientset() (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
	if err != nil {
		return nil, UsageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	// client-go's default (5/s, bursts of 10) would throttle the waits for a
	// dozen probe pods into seconds of delay; kubectl allows 50/s too.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, UsageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	return cs, nil
}

// newDiagnoseID names one diagnosis: its namespace and its labels.
func newDiagnoseID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("diagnosis id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func writeDiagnosis(s Streams, r *diagnose.Report, asJSON bool) error {
	if asJSON {
		e := json.NewEncoder(s.Out)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}
	return r.WriteText(s.Out)
}
