package detectors

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/sketch"
)

func TestKolmogorovQ(t *testing.T) {
	tests := []struct{ lambda, want, tol float64 }{
		{0, 1, 0},
		{0.2, 1, 1e-9},
		{0.5, 0.9639, 1e-4},
		{1.0, 0.2700, 1e-4},
		{1.2238, 0.1000, 2e-4},
		{1.3581, 0.0500, 1e-4},
		{1.6276, 0.0100, 1e-4},
		{3, 3.0461e-8, 1e-11},
	}
	for _, tt := range tests {
		if got := KolmogorovQ(tt.lambda); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("KolmogorovQ(%v) = %.6g, want %.6g", tt.lambda, got, tt.want)
		}
	}
	// The two series agree where they switch.
	lo, hi := KolmogorovQ(1.18-1e-9), KolmogorovQ(1.18+1e-9)
	if math.Abs(lo-hi) > 1e-8 {
		t.Errorf("discontinuity at 1.18: %v vs %v", lo, hi)
	}
	// Stephens' correction: n=m=∞ reduces to λ = √nₑ·D.
	if p := KSPValue(0.1, 1000, 1000); math.Abs(p-KolmogorovQ((math.Sqrt(500)+0.12+0.11/math.Sqrt(500))*0.1)) > 1e-15 {
		t.Errorf("KSPValue = %v", p)
	}
	if KSPValue(0, 10, 10) != 1 || KSPValue(0.5, 0, 10) != 1 {
		t.Error("degenerate KSPValue != 1")
	}
}

func TestGamma(t *testing.T) {
	for _, x := range []float64{1e-6, 0.01, 0.3, 1, 2, 5, 30, 300} {
		if got, want := GammaQ(0.5, x), math.Erfc(math.Sqrt(x)); math.Abs(got-want) > 1e-12+1e-9*want {
			t.Errorf("GammaQ(0.5, %v) = %v, want %v", x, got, want)
		}
		if got, want := GammaQ(1, x), math.Exp(-x); math.Abs(got-want) > 1e-12+1e-9*want {
			t.Errorf("GammaQ(1, %v) = %v, want %v", x, got, want)
		}
		if got := GammaP(3.7, x) + GammaQ(3.7, x); math.Abs(got-1) > 1e-12 {
			t.Errorf("P+Q(3.7, %v) = %v", x, got)
		}
	}
	sf := []struct{ x, k, want float64 }{
		{3.841459, 1, 0.05},
		{18.307038, 10, 0.05},
		{6.634897, 1, 0.01},
		{124.342113, 100, 0.05},
	}
	for _, tt := range sf {
		if got := ChiSquareSF(tt.x, tt.k); math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("ChiSquareSF(%v, %v) = %v, want %v", tt.x, tt.k, got, tt.want)
		}
		if got := ChiSquareQuantile(1-tt.want, tt.k); math.Abs(got-tt.x) > 1e-5*tt.x {
			t.Errorf("ChiSquareQuantile(%v, %v) = %v, want %v", 1-tt.want, tt.k, got, tt.x)
		}
	}
}

func TestChiSquareHomogeneity(t *testing.T) {
	// Textbook 2×3 table: rows (20,30,50) and (30,30,40): χ² = 2.4 + … computed by hand.
	a, b := []float64{20, 30, 50}, []float64{30, 30, 40}
	stat, dof := ChiSquareHomogeneity(a, b)
	var want float64
	for i := range a {
		e := (a[i] + b[i]) / 2
		want += (a[i]-e)*(a[i]-e)/e + (b[i]-e)*(b[i]-e)/e
	}
	if math.Abs(stat-want) > 1e-12 || dof != 2 {
		t.Errorf("stat %v dof %v, want %v 2", stat, dof, want)
	}
	// Rare cells are pooled.
	_, dof = ChiSquareHomogeneity([]float64{1000, 1000, 1, 2}, []float64{1000, 1000, 2, 1})
	if dof != 1 {
		t.Errorf("dof with rare cells = %v, want 1 (the rare pool joins a big cell)", dof)
	}
}

func TestBenjaminiHochberg(t *testing.T) {
	ps := []float64{0.01, 0.04, 0.03, 0.005, 0.5}
	// sorted: 0.005 0.01 0.03 0.04 0.5 → ×5/i: 0.025 0.025 0.05 0.05 0.5
	want := []float64{0.025, 0.05, 0.05, 0.025, 0.5}
	got := BenjaminiHochberg(ps)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("adjusted %v, want %v", got, want)
			break
		}
	}
}

func TestPSIThreshold(t *testing.T) {
	// 10 bins, n = m = 5000, α = 0.05: χ²₀.₉₅(9) = 16.919 × (2/5000).
	if got, want := PSIThreshold(10, 5000, 5000, 0.05), 16.918978*2/5000; math.Abs(got-want) > 1e-6 {
		t.Errorf("PSIThreshold = %v, want %v", got, want)
	}
}

func TestCompact(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{29600, "29.6k"}, {47100, "47.1k"}, {1.2e6, "1.2M"}, {0.13, "0.13"}, {7, "7"}, {0, "0"},
		{-1500, "-1.5k"}, {999.7, "1k"}, {123.456, "123"}, {0.00012, "0.00012"}, {3.4e9, "3.4B"},
	}
	for _, tt := range tests {
		if got := Compact(tt.v); got != tt.want {
			t.Errorf("Compact(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name string
		f    Finding
		want string
	}{
		{"numeric shift", Finding{Kind: "numeric", Score: 0.43, PSI: 1.84, Verdict: Drift, Explanation: Explanation{
			RefP5: 8000, RefP50: 21900, RefP95: 60000, RefMean: 29600,
			CurP5: 20000, CurP50: 43800, CurP95: 75000, CurMean: 47100}},
			"p50 21.9k → 43.8k, mean 29.6k → 47.1k (PSI 1.84)"},
		{"numeric spread", Finding{Kind: "numeric", Score: 0.2, PSI: 0.3, Verdict: Drift, Explanation: Explanation{
			RefP5: -1.64, RefP50: 0, RefP95: 1.64, CurP5: -3.3, CurP50: 0, CurP95: 3.3}},
			"p50 0 → 0, mean 0 → 0, p5/p95 -1.64/1.64 → -3.3/3.3 (PSI 0.30)"},
		{"numeric nulls", Finding{Kind: "numeric", Score: 0.05, PSI: 0.004, Verdict: Stable, Explanation: Explanation{
			RefP50: 1, CurP50: 1, RefMean: 1, CurMean: 1.1, RefNullRate: 0, CurNullRate: 0.2}},
			"p50 1 → 1, mean 1 → 1.1, nulls 0.0% → 20.0% (PSI 0.004)"},
		{"categorical, two categories", Finding{Kind: "categorical", Score: 0.61, PSI: 0.61, Verdict: Drift, Explanation: Explanation{Top: []BinShift{
			{Label: "60K+ €", RefShare: 0.101, CurShare: 0.01, Contribution: 0.21},
			{Label: "20K - 40K €", RefShare: 0.25, CurShare: 0.312, Contribution: 0.03},
			{Label: "40K - 60K €", RefShare: 0.3, CurShare: 0.3, Contribution: 0}}}},
			"'60K+ €' 10.1% → 1.0%, '20K - 40K €' 25.0% → 31.2%"},
		{"categorical, one dominant", Finding{Kind: "categorical", PSI: 0.61, Verdict: Drift, Explanation: Explanation{Top: []BinShift{
			{Label: "60K+ €", RefShare: 0.1, CurShare: 0.01, Contribution: 0.21},
			{Label: "x", RefShare: 0.2, CurShare: 0.21, Contribution: 0.0005}}}},
			"'60K+ €' 10.0% → 1.0%"},
		{"categorical nulls", Finding{Kind: "categorical", PSI: 0.3, Verdict: Drift, Explanation: Explanation{
			RefNullRate: 0.01, CurNullRate: 0.2, Top: []BinShift{{Label: LabelNull, RefShare: 0.01, CurShare: 0.2, Contribution: 0.5}}}},
			"(null) 1.0% → 20.0%"},
	}
	for _, tt := range tests {
		if got := tt.f.Summary(); got != tt.want {
			t.Errorf("%s: Summary() = %q, want %q", tt.name, got, tt.want)
		}
		if s := tt.f.Summary(); strings.Contains(s, "KS") || tt.f.Kind == "categorical" && strings.Contains(s, "PSI") {
			t.Errorf("%s: Summary() %q repeats the primary score", tt.name, s)
		}
	}
	f := Finding{Verdict: InsufficientData, Note: "42 reference and 7 current values, need 100 each"}
	if !strings.HasPrefix(f.Summary(), "insufficient data") {
		t.Errorf("Summary() = %q", f.Summary())
	}
}

// TestCategoricalBins: the bins are the union of both sides' categories;
// a new category with enough values keeps its own bin (reference count 0),
// rare categories on either side are pooled into "(rare)", and the Other
// buckets and nulls get their own bins.
func TestCategoricalBins(t *testing.T) {
	var ref, cur []string
	add := func(dst *[]string, v string, k int) {
		for i := 0; i < k; i++ {
			*dst = append(*dst, v)
		}
	}
	add(&ref, "a", 500)
	add(&ref, "b", 300)
	add(&ref, "r1", 2) // rare, reference only
	add(&ref, "\x00null", 50)
	add(&cur, "a", 400)
	add(&cur, "b", 300)
	add(&cur, "new", 100) // new, common enough for its own bin
	add(&cur, "r2", 3)    // rare, current only
	add(&cur, "\x00null", 40)
	rp := profileOf(t, []column{{name: "c", cat: ref}}, sketch.Options{}, 0)
	cp := profileOf(t, []column{{name: "c", cat: cur}}, sketch.Options{}, 0)
	b := CategoricalBins(rp.Features[0].Cat, cp.Features[0].Cat)
	want := Bins{
		Labels: []string{"a", "b", "new", LabelNull, LabelRare},
		Ref:    []float64{500, 300, 0, 50, 2},
		Cur:    []float64{400, 300, 100, 40, 3},
	}
	if !slices.Equal(b.Labels, want.Labels) || !slices.Equal(b.Ref, want.Ref) || !slices.Equal(b.Cur, want.Cur) {
		t.Errorf("bins %+v, want %+v", b, want)
	}
}

// TestStudentT against published values (scipy.stats.t): two-sided tail of
// t = 2 with 10 df, and quantiles.
func TestStudentT(t *testing.T) {
	for _, c := range []struct{ got, want float64 }{
		{StudentTTwoSided(2, 10), 0.0733880347707},
		{StudentTTwoSided(0, 5), 1},
		{StudentTQuantile(0.975, 10), 2.2281388519649},
		{StudentTQuantile(0.995, 3), 5.8409093097333},
		{StudentTQuantile(0.975, 1e7), 1.9599642217}, // z + (z³+z)/(4·df)
	} {
		if math.Abs(c.got-c.want) > 1e-8*max(1, c.want) {
			t.Errorf("got %.13f, want %.13f", c.got, c.want)
		}
	}
}
