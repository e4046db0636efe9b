package compare

import (
	"math"
	"testing"
)

// Reference values: the textbook examples of Fisher's test (Fisher's lady
// tasting tea; Wikipedia's dieting table; SciPy's fisher_exact example) and
// tables as large as a cell's, whose p-values were computed exactly with
// rational arithmetic (Python's fractions, summing every table no more
// likely than the observed one).
func TestFisherExactP(t *testing.T) {
	tests := []struct {
		name       string
		a, b, c, d uint64
		want       float64
	}{
		{"lady tasting tea", 3, 1, 1, 3, 0.4857142857142857},
		{"Wikipedia: dieting by sex", 1, 9, 11, 3, 0.0027594561852200836},
		{"SciPy fisher_exact example", 6, 2, 1, 4, 0.10256410256410256},
		{"perfect separation", 0, 5, 5, 0, 0.007936507936507936},
		{"2 of 2500 against 0 of 2500", 2, 2498, 0, 2500, 0.4998999799959992},
		{"1.0% against 2.5%", 10, 990, 25, 975, 0.015749705522146423},
		{"0 of 2500 against 126 of 2500", 0, 2500, 126, 2374, 4.6724905298299175e-39},
		{"no events at all", 0, 10, 0, 10, 1},
		{"empty run", 0, 0, 3, 7, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fisherExactP(tt.a, tt.b, tt.c, tt.d)
			if math.Abs(got-tt.want) > 1e-9*tt.want && math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("fisherExactP(%d, %d, %d, %d) = %.16g, want %.16g", tt.a, tt.b, tt.c, tt.d, got, tt.want)
			}
			// Swapping the runs changes nothing in a two-sided test.
			if sw := fisherExactP(tt.c, tt.d, tt.a, tt.b); math.Abs(sw-got) > 1e-12+1e-9*got {
				t.Errorf("swapped rows: %.16g, want %.16g", sw, got)
			}
		})
	}
}

func TestMannWhitneyP(t *testing.T) {
	// R's documentation of wilcox.test (two-sample example), two-sided.
	rx := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	ry := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	// 40 against 40 log-normal values (no ties): exact p by enumerating the
	// U distribution in Python.
	x40 := []float64{1.3549, 0.992913, 1.850496, 1.661533, 0.845161, 1.838116, 0.656615, 0.899721, 0.742544, 0.639944, 1.920979, 1.16175, 0.614274, 1.930562, 1.911344, 2.359977, 0.66434, 1.011089, 0.590225, 1.545832, 0.537066, 1.707506, 0.825666, 1.033161, 1.030043, 0.990931, 0.895829, 1.11308, 1.655373, 1.495548, 1.282127, 1.131308, 0.645431, 1.734846, 1.096042, 1.077926, 1.007892, 0.828738, 1.091619, 1.194843}
	y40 := []float64{0.69329, 0.358317, 1.587201, 1.807851, 0.552792, 1.169506, 0.727784, 0.912562, 1.882941, 1.009908, 0.693439, 1.241671, 1.36475, 2.215122, 0.459067, 0.50327, 1.888299, 2.289759, 0.686948, 1.091391, 0.89095, 0.786958, 0.417366, 1.931418, 1.451742, 1.927707, 1.149952, 0.622161, 1.256881, 0.488815, 0.951512, 0.420228, 0.921554, 1.132719, 3.394003, 2.37497, 3.850882, 0.539282, 0.589137, 0.878926}
	tests := []struct {
		name string
		a, b []float64
		want float64
		tol  float64
	}{
		{"R wilcox.test example", rx, ry, 0.2544122544122544, 1e-9},
		{"40 against 40", x40, y40, 0.5118620097816535, 1e-9},
		{"all one value", []float64{5, 5, 5}, []float64{5, 5}, 1, 0},
		{"separated, 4 against 4: the smallest p", []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}, 2.0 / 70, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mannWhitneyP(tt.a, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > tt.tol {
				t.Errorf("p = %.16g, want %.16g", got, tt.want)
			}
		})
	}
}

func TestHolm(t *testing.T) {
	tests := []struct {
		ps, want []float64
	}{
		// R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")
		{[]float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		{[]float64{0.5}, []float64{0.5}},
		{[]float64{0.3, 0.3, 0.9}, []float64{0.9, 0.9, 0.9}},
		{[]float64{0.001, 0.2, 0.6}, []float64{0.003, 0.4, 0.6}},
		{nil, []float64{}},
	}
	for _, tt := range tests {
		got := holm(tt.ps)
		if len(got) != len(tt.want) {
			t.Fatalf("holm(%v) = %v, want %v", tt.ps, got, tt.want)
		}
		for i := range got {
			if math.Abs(got[i]-tt.want[i]) > 1e-12 {
				t.Errorf("holm(%v) = %v, want %v", tt.ps, got, tt.want)
				break
			}
		}
	}
}

func TestSampleSizeRules(t *testing.T) {
	// benchstat's table: 4 samples each reach p < 0.05; 6 give a 95 %
	// interval of the median.
	tests := []struct {
		name      string
		got, want int
	}{
		{"U test at α = 0.05", uTestSamplesFor(0.05), 4},
		{"U test at α = 0.05/8", uTestSamplesFor(0.05 / 8), 6},
		{"median CI at 95 %", medianCISamples(0.95), 6},
		{"rule of three for 0.1 %", int(ruleOfThree(0.001)), 3000},
		{"rule of three for 5 %", int(ruleOfThree(0.05)), 60},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if p := uTestMinP(4, 4); math.Abs(p-2.0/70) > 1e-12 {
		t.Errorf("uTestMinP(4, 4) = %v, want 2/70", p)
	}
}
