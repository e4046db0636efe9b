package diagnose

import (
	"strings"
	"testing"
)

func burst(node string, variant int, target string, lookups, at5s uint64) Burst {
	return Burst{Probe: Probe{Pod: "p", Node: node, Variant: Variants[variant], Target: Target{Name: target}},
		Lookups: lookups, Retried: at5s, Delayed: at5s, Complete: true}
}

// A measurement that contradicts the prediction says so.
func TestJudgeAgainstPrediction(t *testing.T) {
	m := &Measurement{Bursts: []Burst{burst("a", 0, TargetVIP, 400, 9), burst("a", 0, TargetDNSPod, 400, 0)}}
	v := Judge(Facts{Nodes: nodes("6.1.0"), DNS: dns(2)}, Prediction{Verdict: PredictNotAffected}, m)
	if v.Verdict != VerdictAffected || !strings.Contains(strings.Join(v.Evidence, "\n"), "the facts predicted not affected, the measurement disagrees") {
		t.Errorf("%q: %q", v.Verdict, v.Evidence)
	}
}

func TestJudge(t *testing.T) {
	old := Facts{Nodes: nodes("4.19.0", "6.1.0"), DNS: dns(2)}
	affected := Prediction{Verdict: PredictAffected}
	for _, tc := range []struct {
		name      string
		f         Facts
		m         *Measurement
		verdict   string
		evidence  []string
		recommend []string
		notRecomm string
	}{
		{"race on the VIP, srr fixes it", old, &Measurement{Bursts: []Burst{
			burst("a", 0, TargetVIP, 400, 9), burst("a", 0, TargetDNSPod, 400, 0), burst("a", 1, TargetVIP, 400, 0),
			burst("a", 2, TargetVIP, 400, 0), burst("a", 3, TargetVIP, 400, 7),
		}, Counters: []NodeCounters{{Node: "a", Delta: map[string]int64{"insert_failed": 11, "drop": 11}}}},
			VerdictAffected,
			[]string{"glibc → vip: 9 of 400 lookups waited for a retry (on a)", "the delays are on the VIP path", "single-request-reopen removed them", "use-vc removed them", "musl is delayed", "insert_failed +11"},
			[]string{"single-request-reopen", "deploy NodeLocal DNSCache", "nodes a: a kernel ≥ 5.6"}, ""},
		{"delays on the pod IPs too", old, &Measurement{Bursts: []Burst{
			burst("a", 0, TargetVIP, 400, 8), burst("a", 0, TargetDNSPod, 400, 6),
		}}, VerdictOtherCause, []string{"not only the race"}, nil, ""},
		{"nothing delayed, predicted affected", old, &Measurement{Bursts: []Burst{
			burst("a", 0, TargetVIP, 400, 0), burst("a", 3, TargetVIP, 400, 0),
		}, CountersNote: "not read: needs --allow-privileged (a hostNetwork pod per node)"},
			VerdictNotAffected, []string{"the prediction said affected", "node counters not read: needs --allow-privileged"}, nil, "single-request-reopen"},
		{"every probe incomplete", old, &Measurement{Bursts: []Burst{{Probe: Probe{Pod: "p", Variant: Variants[0], Target: Target{Name: TargetVIP}}, Problem: "no summary line"}}},
			VerdictInconclusive, []string{"no probe finished"}, nil, ""},
		{"not measured", old, nil, PredictAffected + " (not measured)", []string{"no measurement"}, []string{"single-request-reopen"}, ""},
	} {
		v := Judge(tc.f, affected, tc.m)
		if v.Verdict != tc.verdict {
			t.Errorf("%s: verdict %q, want %q\n%s", tc.name, v.Verdict, tc.verdict, strings.Join(v.Evidence, "\n"))
		}
		ev := strings.Join(v.Evidence, "\n")
		for _, want := range tc.evidence {
			if !strings.Contains(ev, want) {
				t.Errorf("%s: evidence lacks %q:\n%s", tc.name, want, ev)
			}
		}
		rec := strings.Join(v.Recommendations, "\n")
		for _, want := range tc.recommend {
			if !strings.Contains(rec, want) {
				t.Errorf("%s: recommendations lack %q:\n%s", tc.name, want, rec)
			}
		}
		if tc.notRecomm != "" && strings.Contains(rec, tc.notRecomm) {
			t.Errorf("%s: recommends %q though nothing was delayed:\n%s", tc.name, tc.notRecomm, rec)
		}
	}
}
