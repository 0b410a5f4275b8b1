package detectors

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/sketch"
)

// qualityOf returns the finding of one check of one feature.
func qualityOf(t *testing.T, qs []QualityFinding, feature, check string) QualityFinding {
	t.Helper()
	for _, q := range qs {
		if q.Feature == feature && q.Check == check {
			return q
		}
	}
	t.Fatalf("no %s finding for %q", check, feature)
	return QualityFinding{}
}

// TestQualityNullRate: a numeric feature whose distribution is unchanged
// but whose null rate goes from 0.2% to 8% is stable for KS (which ignores
// nulls by design) and a null_rate violation; a categorical one likewise.
// A change below the 5-point minimum is significant but not a violation.
func TestQualityNullRate(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 31))
	const n = 5000
	mk := func(nullShare float64) *sketch.Profile {
		return profileOf(t, []column{
			withNulls(r, column{name: "x", num: normals(r, n, 0, 1)}, nullShare),
			withNulls(r, column{name: "c", cat: cats(r, n, []float64{3, 2, 1})}, nullShare),
		}, sketch.Options{}, 0)
	}
	ref, cur, small := mk(0.002), mk(0.08), mk(0.02)

	for _, f := range Evaluate(ref, cur, Options{}) {
		if f.Feature == "x" && f.Verdict != Stable {
			t.Errorf("KS on x: %s, want stable (nulls are not values)", f.Verdict)
		}
	}
	qs := EvaluateQuality(ref, cur, QualityOptions{})
	for _, name := range []string{"x", "c"} {
		q := qualityOf(t, qs, name, CheckNullRate)
		t.Logf("%s: %s (p %.2g)", name, q.Summary(), q.AdjustedP)
		if q.Verdict != Violation || !q.Tested {
			t.Errorf("%s: verdict %s, want violation", name, q.Verdict)
		}
		if !strings.HasPrefix(q.Summary(), "null rate 0.2% → ") || math.Abs(q.Cur-0.08) > 0.01 {
			t.Errorf("%s: summary %q", name, q.Summary())
		}
		if other := qualityOf(t, qs, name, CheckTypeErrors); other.Verdict != OK {
			t.Errorf("%s: type_errors %s", name, other.Verdict)
		}
	}
	q := qualityOf(t, EvaluateQuality(ref, small, QualityOptions{}), "x", CheckNullRate)
	if q.Verdict != OK || q.AdjustedP > 0.01 {
		t.Errorf("0.2%% → 2%%: %s (adj p %.2g), want ok although significant", q.Verdict, q.AdjustedP)
	}
	q = qualityOf(t, EvaluateQuality(ref, small, QualityOptions{NullRateChange: 0.01}), "x", CheckNullRate)
	if q.Verdict != Violation {
		t.Errorf("0.2%% → 2%% with a 1-point minimum: %s, want violation", q.Verdict)
	}
}

// TestTwoProportionP checks the z-test against hand-computed values.
func TestTwoProportionP(t *testing.T) {
	// 10/100 vs 20/100: p̂ = 0.15, z = 0.1/√(0.15·0.85·0.02) = 1.9803.
	if got, want := TwoProportionP(10, 100, 20, 100), math.Erfc(1.98030/math.Sqrt2); math.Abs(got-want) > 1e-5 {
		t.Errorf("TwoProportionP = %v, want %v", got, want)
	}
	for _, c := range [][4]int64{{0, 100, 0, 100}, {100, 100, 50, 50}, {1, 0, 1, 10}} {
		if p := TwoProportionP(c[0], c[1], c[2], c[3]); p != 1 {
			t.Errorf("TwoProportionP%v = %v, want 1", c, p)
		}
	}
}

// TestQualityNaNAndOutOfRange: NaN/Inf rate and the share of values outside
// the reference's range or configured bounds.
func TestQualityNaNAndOutOfRange(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 32))
	const n = 5000
	ref := numProfile(t, normals(r, n, 0, 1))
	same := numProfile(t, normals(r, n, 0, 1))
	outliers := normals(r, n, 0, 1)
	for i := range outliers[:250] {
		outliers[i] = 10 + float64(i) // 5% far above the reference max
	}
	nans := withNaNs(r, column{name: "x", num: normals(r, n, 0, 1)}, 0.03).num
	wide := normals(r, n, 0, 2)

	tests := []struct {
		name   string
		cur    *sketch.Profile
		opts   QualityOptions
		check  string
		want   Verdict
		tested bool
		cur0   float64 // expected Cur, ± 0.01
	}{
		{"same range", same, QualityOptions{}, CheckOutOfRange, OK, true, 0},
		{"5% outliers", numProfile(t, outliers), QualityOptions{}, CheckOutOfRange, Violation, true, 0.05},
		{"bounds ±3, σ=1", same, QualityOptions{Bounds: map[string]Bounds{"x": {-3, 3}}}, CheckOutOfRange, OK, false, 0.0027},
		{"bounds ±3, σ=2", numProfile(t, wide), QualityOptions{Bounds: map[string]Bounds{"x": {-3, 3}}}, CheckOutOfRange, Violation, false, 0.134},
		{"bounds [0, +Inf)", same, QualityOptions{Bounds: map[string]Bounds{"x": {0, math.Inf(1)}}}, CheckOutOfRange, Violation, false, 0.5},
		{"disabled", numProfile(t, outliers), QualityOptions{OutOfRangeShare: -1}, CheckOutOfRange, "", false, 0},
		{"3% NaN", numProfile(t, nans), QualityOptions{}, CheckNaNRate, Violation, true, 0.03},
		{"no NaN", same, QualityOptions{}, CheckNaNRate, OK, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs := EvaluateQuality(ref, tt.cur, tt.opts)
			if tt.want == "" {
				for _, q := range qs {
					if q.Check == tt.check {
						t.Errorf("disabled check ran: %+v", q)
					}
				}
				return
			}
			q := qualityOf(t, qs, "x", tt.check)
			t.Logf("%s: %s (p %.2g)", q.Verdict, q.Summary(), q.PValue)
			if q.Verdict != tt.want || q.Tested != tt.tested {
				t.Errorf("verdict %s tested %v, want %s %v", q.Verdict, q.Tested, tt.want, tt.tested)
			}
			if math.Abs(q.Cur-tt.cur0) > 0.01 {
				t.Errorf("Cur = %.4f, want %.4f", q.Cur, tt.cur0)
			}
		})
	}
}

// TestOutsideRangeP: the exact small case, and calibration by simulation
// on raw data: under no change, P(p ≤ α) ≤ α.
func TestOutsideRangeP(t *testing.T) {
	for _, n := range []int64{2, 10, 1000} {
		// One new value is outside the range of n with probability 2/(n+1).
		if got, want := OutsideRangeP(1, 1, n), 2/float64(n+1); math.Abs(got-want) > 1e-12 {
			t.Errorf("OutsideRangeP(1, 1, %d) = %v, want %v", n, got, want)
		}
	}
	if OutsideRangeP(0, 10, 10) != 1 || OutsideRangeP(11, 10, 10) != 0 {
		t.Error("edge cases")
	}
	// Both tail sums agree at the switch (k just below and above the mean).
	if a, b := OutsideRangeP(20, 1000, 100), OutsideRangeP(19, 1000, 100)-bbPMF(19, 1000, 100); math.Abs(a-b) > 1e-9 {
		t.Errorf("tails disagree: %v vs %v", a, b)
	}
	r := rand.New(rand.NewPCG(33, 33))
	for _, c := range []struct{ n, m int }{{50, 50}, {200, 2000}, {1000, 100}} {
		const sims = 4000
		var hits int
		for s := 0; s < sims; s++ {
			lo, hi := math.Inf(1), math.Inf(-1)
			for i := 0; i < c.n; i++ {
				x := r.NormFloat64()
				lo, hi = min(lo, x), max(hi, x)
			}
			var k int64
			for i := 0; i < c.m; i++ {
				if x := r.NormFloat64(); x < lo || x > hi {
					k++
				}
			}
			if OutsideRangeP(k, int64(c.m), int64(c.n)) <= 0.05 {
				hits++
			}
		}
		rate := float64(hits) / sims
		t.Logf("n=%d m=%d: P(p ≤ 0.05) = %.4f", c.n, c.m, rate)
		if rate > 0.05+0.01 {
			t.Errorf("n=%d m=%d: P(p ≤ 0.05) = %.4f", c.n, c.m, rate)
		}
	}
}

// bbPMF is the beta-binomial(m, 2, n−1) probability of k.
func bbPMF(k, m, n int64) float64 {
	fk, fm, fn := float64(k), float64(m), float64(n)
	return math.Exp(lchoose(fm, fk) + lbeta(fk+2, fm-fk+fn-1) - lbeta(2, fn-1))
}

// TestQualityNewCategory: a new category in 5% of the values is a
// violation and is named; the same categories are not.
func TestQualityNewCategory(t *testing.T) {
	r := rand.New(rand.NewPCG(34, 34))
	const n = 5000
	ref := profileOf(t, []column{{name: "c", cat: cats(r, n, []float64{5, 3, 1, 1})}}, sketch.Options{}, 0)
	same := profileOf(t, []column{{name: "c", cat: cats(r, n, []float64{5, 3, 1, 1})}}, sketch.Options{}, 0)
	// cats draws from a..j: weight on e and f, unseen in the reference.
	fresh := profileOf(t, []column{{name: "c", cat: cats(r, n, []float64{5, 3, 1, 1, 0.4, 0.1})}}, sketch.Options{}, 0)

	q := qualityOf(t, EvaluateQuality(ref, same, QualityOptions{}), "c", CheckNewCategory)
	if q.Verdict != OK || q.Cur != 0 {
		t.Errorf("same categories: %s, share %v", q.Verdict, q.Cur)
	}
	q = qualityOf(t, EvaluateQuality(ref, fresh, QualityOptions{}), "c", CheckNewCategory)
	t.Logf("%s: %s", q.Verdict, q.Summary())
	if q.Verdict != Violation || math.Abs(q.Cur-0.5/10.5) > 0.01 {
		t.Errorf("new categories: %s, share %.4f, want violation, %.4f", q.Verdict, q.Cur, 0.5/10.5)
	}
	if len(q.Top) != 2 || q.Top[0].Label != "e" || q.Top[1].Label != "f" {
		t.Errorf("Top = %+v, want e then f", q.Top)
	}
	if !strings.Contains(q.Summary(), "'e' 3.") {
		t.Errorf("summary %q does not name 'e'", q.Summary())
	}
	// Drift sees them too, by name.
	for _, f := range Evaluate(ref, fresh, Options{}) {
		if len(f.Explanation.Top) == 0 || f.Explanation.Top[0].Label != "e" {
			t.Errorf("drift explanation %+v, want 'e' first", f.Explanation.Top)
		}
	}
}

// TestExpectedDistinct compares the rarefied and extrapolated distinct
// counts with simulation from a long-tailed population (Zipf, s = 1.1, 2000
// categories). Rarefaction is close; extrapolation uses Chao1, a lower
// bound for richness, and falls behind the further it reaches (about −5%
// at 2×, −18% at 5× here); the Other bucket of a reference whose
// categories overflowed is modelled with geometric counts, which
// overstates heavier tails (+17% with 100 of 1600 categories counted).
// The distinct-ratio bounds [0.5, 2] absorb both.
func TestExpectedDistinct(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 35))
	distinct := func(vals []string) float64 {
		seen := map[string]bool{}
		for _, v := range vals {
			seen[v] = true
		}
		return float64(len(seen))
	}
	tests := []struct {
		name    string
		n, m    int
		opts    sketch.Options
		tol     float64
		wantBad bool
	}{
		{"rarefy 20000 → 2000 (1000 counted)", 20000, 2000, sketch.Options{}, 0.03, false},
		{"same size", 5000, 5000, sketch.Options{}, 0.05, false},
		{"extrapolate 2000 → 4000", 2000, 4000, sketch.Options{}, 0.1, false},
		{"extrapolate 2000 → 10000", 2000, 10000, sketch.Options{}, 0.25, false},
		{"rarefy 20000 → 2000 (100 counted)", 20000, 2000, sketch.Options{MaxCategories: 100}, 0.25, false},
		{"extrapolate with Other", 2000, 10000, sketch.Options{MaxCategories: 100}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := profileOf(t, []column{{name: "c", cat: zipf(r, tt.n, 2000, 1.1)}}, tt.opts, 0)
			var want float64
			const sims = 10
			for s := 0; s < sims; s++ {
				want += distinct(zipf(r, tt.m, 2000, 1.1)) / sims
			}
			got, ok := ExpectedDistinct(ref.Features[0].Cat, int64(tt.m))
			t.Logf("expected %.1f, simulated %.1f (reference: %.0f distinct in %d)", got, want, ref.Features[0].Cat.Distinct(), tt.n)
			if ok == tt.wantBad {
				t.Fatalf("ok = %v", ok)
			}
			if ok && math.Abs(got/want-1) > tt.tol {
				t.Errorf("expected %.1f, simulated %.1f: off by more than %.0f%%", got, want, 100*tt.tol)
			}
		})
	}
}

// TestQualityDistinctRatio: an identifier leaking into a categorical
// feature (every value new) and a feature collapsing to a few values are
// violations; small categoricals are left to PSI.
func TestQualityDistinctRatio(t *testing.T) {
	r := rand.New(rand.NewPCG(36, 36))
	const n = 5000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(i)
	}
	ref := profileOf(t, []column{{name: "c", cat: zipf(r, n, 50, 0.5)}, {name: "small", cat: cats(r, n, []float64{1, 1})}}, sketch.Options{}, 0)
	tests := []struct {
		name  string
		c     []string
		small []string
		want  Verdict
	}{
		{"same", zipf(r, n, 50, 0.5), cats(r, n, []float64{1, 1}), OK},
		{"identifiers", ids, cats(r, n, []float64{1, 1}), Violation},
		{"collapse", zipf(r, n, 5, 0.5), cats(r, n, []float64{1}), Violation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := profileOf(t, []column{{name: "c", cat: tt.c}, {name: "small", cat: tt.small}}, sketch.Options{}, 0)
			qs := EvaluateQuality(ref, cur, QualityOptions{})
			q := qualityOf(t, qs, "c", CheckDistinctRatio)
			t.Logf("%s: %s", q.Verdict, q.Summary())
			if q.Verdict != tt.want || q.Tested {
				t.Errorf("verdict %s tested %v, want %s", q.Verdict, q.Tested, tt.want)
			}
			if q := qualityOf(t, qs, "small", CheckDistinctRatio); q.Verdict != InsufficientData {
				t.Errorf("small: %s (%s), want insufficient_data", q.Verdict, q.Summary())
			}
		})
	}
}

// TestQualityVolumeAndFreshness: rows per window against the expected rows,
// and the lag of the evaluation behind the window's end.
func TestQualityVolumeAndFreshness(t *testing.T) {
	end := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	window := func(rows int64) *sketch.Profile {
		p := sketch.NewProfile(nil, sketch.Options{})
		p.Rows, p.Start, p.End = rows, end.Add(-time.Hour), end
		return p
	}
	ref := window(0)
	ref.Rows, ref.Start = 120_000, end.Add(-24*time.Hour) // a day of hourly windows at 5k rows each
	expected := RowsPerWindow(ref, time.Hour)
	if expected != 5000 {
		t.Fatalf("RowsPerWindow = %v, want 5000", expected)
	}
	if RowsPerWindow(window(10), 0) != 0 || RowsPerWindow(sketch.NewProfile(nil, sketch.Options{}), time.Hour) != 0 {
		t.Error("RowsPerWindow without bounds is not 0")
	}
	vol := []struct {
		rows     int64
		expected float64
		want     Verdict
	}{
		{5100, expected, OK},
		{2000, expected, Violation},
		{12000, expected, Violation},
		{4, 10, OK}, // 0.4× but 4 rows where 10 were expected is chance
		{0, 100, Violation},
	}
	for _, v := range vol {
		q := EvaluateQuality(ref, window(v.rows), QualityOptions{ExpectedRows: v.expected})[0]
		t.Logf("%d rows: %s: %s (p %.2g)", v.rows, q.Verdict, q.Summary(), q.PValue)
		if q.Check != CheckVolume || q.Verdict != v.want {
			t.Errorf("%d rows, %v expected: %s %s, want %s", v.rows, v.expected, q.Check, q.Verdict, v.want)
		}
	}
	fresh := []struct {
		now, windowEnd time.Time
		cur            *sketch.Profile
		want           Verdict
	}{
		{end.Add(10 * time.Minute), time.Time{}, window(1), OK},
		{end.Add(3 * time.Hour), time.Time{}, window(1), Violation},
		{end.Add(3 * time.Hour), end.Add(150 * time.Minute), window(1), OK},
		{end, time.Time{}, sketch.NewProfile(nil, sketch.Options{}), InsufficientData},
	}
	for _, f := range fresh {
		q := EvaluateQuality(ref, f.cur, QualityOptions{Now: f.now, WindowEnd: f.windowEnd})[0]
		t.Logf("%s: %s", q.Verdict, q.Summary())
		if q.Check != CheckFreshness || q.Verdict != f.want {
			t.Errorf("now %s: %s %s, want %s", f.now, q.Check, q.Verdict, f.want)
		}
	}
	if qs := EvaluateQuality(ref, window(1), QualityOptions{}); len(qs) != 0 {
		t.Errorf("volume or freshness ran without their inputs: %+v", qs)
	}
}

// TestQualityTypeErrors: a column that arrives with the wrong Arrow type is
// a type_errors violation, not a null-rate one.
func TestQualityTypeErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(37, 37))
	ref := numProfile(t, normals(r, 1000, 0, 1))
	cur := sketch.NewProfile(ref.Fields(), sketch.Options{})
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for i := 0; i < 1000; i++ {
		b.Field(0).(*array.StringBuilder).Append("1.5")
	}
	rec := b.NewRecord()
	defer rec.Release()
	cur.Update(rec, nil)

	qs := EvaluateQuality(ref, cur, QualityOptions{})
	q := qualityOf(t, qs, "x", CheckTypeErrors)
	if q.Verdict != Violation || q.Summary() != "type errors 0.0% → 100.0% of values" {
		t.Errorf("type_errors: %s %q", q.Verdict, q.Summary())
	}
	if q := qualityOf(t, qs, "x", CheckNullRate); q.Verdict != OK || q.Cur != 0 {
		t.Errorf("null_rate: %s %v, want ok 0", q.Verdict, q.Cur)
	}
}

// TestQualityMissingFeature: a feature the reference lacks gets
// insufficient_data for every check.
func TestQualityMissingFeature(t *testing.T) {
	r := rand.New(rand.NewPCG(38, 38))
	ref := numProfile(t, normals(r, 1000, 0, 1))
	cur := profileOf(t, []column{{name: "y", num: normals(r, 1000, 0, 1)}, {name: "c", cat: cats(r, 1000, []float64{1})}}, sketch.Options{}, 0)
	qs := EvaluateQuality(ref, cur, QualityOptions{})
	if len(qs) != 8 {
		t.Fatalf("%d findings, want 4 per feature", len(qs))
	}
	for _, q := range qs {
		if q.Verdict != InsufficientData || q.Summary() != "insufficient data: feature not in reference" {
			t.Errorf("%s %s: %s %q", q.Feature, q.Check, q.Verdict, q.Summary())
		}
	}
	if EvaluateQuality(ref, nil, QualityOptions{}) != nil {
		t.Error("nil current profile gave findings")
	}
}

func TestQualitySummary(t *testing.T) {
	tests := []struct {
		q    QualityFinding
		want string
	}{
		{QualityFinding{Check: CheckNullRate, Verdict: Violation, Ref: 0.002, Cur: 0.081}, "null rate 0.2% → 8.1%"},
		{QualityFinding{Check: CheckNaNRate, Verdict: OK, Ref: 0, Cur: 0.03}, "NaN/Inf rate 0.0% → 3.0%"},
		{QualityFinding{Check: CheckOutOfRange, Verdict: Violation, Tested: true, Cur: 0.12, Bounds: Bounds{1200, 98300}},
			"12.0% of values outside the reference range [1.2k, 98.3k]"},
		{QualityFinding{Check: CheckOutOfRange, Verdict: Violation, Cur: 0.12, Bounds: Bounds{0, math.Inf(1)}},
			"12.0% of values outside bounds [0, +Inf]"},
		{QualityFinding{Check: CheckNewCategory, Verdict: Violation, Ref: 0.001, Cur: 0.041, Top: []BinShift{{Label: "x", CurShare: 0.039}}},
			"new categories 4.1% of values (expected 0.1%): 'x' 3.9%"},
		{QualityFinding{Check: CheckDistinctRatio, Verdict: Violation, Ref: 38, Cur: 5200, Score: 5200.0 / 38},
			"5.2k distinct values, expected 38 (137×)"},
		{QualityFinding{Check: CheckVolume, Verdict: Violation, Ref: 48000, Cur: 12000, Score: 0.25},
			"12k rows, expected 48k (0.25×)"},
		{QualityFinding{Check: CheckFreshness, Verdict: Violation, Cur: 11400, Threshold: 3600},
			"evaluated 3h10m0s after the window's end (max 1h0m0s)"},
		{QualityFinding{Check: CheckNullRate, Verdict: InsufficientData, Note: "7 reference and 9 current values, need 100 each"},
			"insufficient data: 7 reference and 9 current values, need 100 each"},
	}
	for _, tt := range tests {
		if got := tt.q.Summary(); got != tt.want {
			t.Errorf("Summary() = %q, want %q", got, tt.want)
		}
	}
}

// TestOutsideRangePLarge: the Beta limit used when m ≫ n agrees with the
// series where both apply, and huge counts return at once.
func TestOutsideRangePLarge(t *testing.T) {
	// mean 2m/(n+1) = 9990: the series; the limit for comparison.
	m, n := int64(99_900), int64(19)
	for _, k := range []int64{5000, 10000, 20000, 40000} {
		series := OutsideRangeP(k, m, n)
		u := (float64(k) - 0.5) / float64(m)
		limit := math.Pow(1-u, float64(n-1)) * (1 + float64(n-1)*u)
		if math.Abs(series-limit) > 0.01 {
			t.Errorf("k=%d: series %v, Beta limit %v", k, series, limit)
		}
	}
	start := time.Now()
	for _, c := range [][3]int64{{1 << 40, 1 << 50, 3}, {1 << 20, 1 << 50, 1 << 40}, {5, 1 << 62, 1 << 62}} {
		if p := OutsideRangeP(c[0], c[1], c[2]); !(p >= 0 && p <= 1) {
			t.Errorf("OutsideRangeP%v = %v", c, p)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("huge counts took %v", d)
	}
}
