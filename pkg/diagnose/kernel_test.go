package diagnose

import "testing"

func TestPredictKernel(t *testing.T) {
	for _, tc := range []struct {
		release              string
		known, eq, diff, col bool
		drops                string
	}{
		{"4.14.355-275.570.amzn2.x86_64", true, false, false, false, DropsEvery},
		{"4.18.0-513.24.1.el8_9.x86_64", true, false, false, false, DropsEvery},
		{"4.19.112+", true, true, false, false, DropsDifferentBackends}, // COS, EKS of the seeds
		{"5.4.0-1103-azure", true, true, false, false, DropsDifferentBackends},
		{"5.6.0", true, true, true, false, DropsNone},
		{"5.10.223-212.873.amzn2.x86_64", true, true, true, true, DropsNone},
		{"6.18.0", true, true, true, true, DropsNone},
		{"v5.15.0-1049-gke", true, true, true, true, DropsNone},
		{"", false, false, false, false, DropsUnknown},
		{"linux", false, false, false, false, DropsUnknown},
	} {
		k := PredictKernel(tc.release)
		if k.Known != tc.known || k.EqualNATResolved != tc.eq || k.DifferentBackendsResolved != tc.diff || k.Clashres != tc.col || k.Drops != tc.drops {
			t.Errorf("%q: got %+v", tc.release, k)
		}
	}
}
