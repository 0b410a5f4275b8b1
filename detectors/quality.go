package detectors

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/driftmon/driftmon/sketch"
)

// Names of the data-quality checks, as they appear in QualityFinding.Check.
const (
	// CheckNullRate compares the share of null values (absent fields
	// included, type errors excluded) with the reference's.
	CheckNullRate = "null_rate"
	// CheckNaNRate compares the share of NaN and ±Inf values of a numeric
	// feature with the reference's.
	CheckNaNRate = "nan_rate"
	// CheckTypeErrors compares the share of values whose Arrow type could
	// not be read as the feature's kind with the reference's.
	CheckTypeErrors = "type_errors"
	// CheckOutOfRange is the share of a numeric feature's current values
	// outside the reference's [min, max] or the configured bounds.
	CheckOutOfRange = "out_of_range"
	// CheckNewCategory is the share of a categorical feature's current
	// values whose category the reference has not seen, beyond the share
	// the reference itself predicts.
	CheckNewCategory = "new_category"
	// CheckDistinctRatio is a categorical feature's distinct count divided
	// by the distinct count the reference predicts for a window of this
	// size.
	CheckDistinctRatio = "distinct_ratio"
	// CheckVolume is the window's row count divided by the expected rows.
	CheckVolume = "volume"
	// CheckFreshness is how long after its end the window is evaluated.
	CheckFreshness = "freshness"
)

// Verdicts of data-quality checks; InsufficientData is shared with drift.
const (
	Violation Verdict = "violation"
	OK        Verdict = "ok"
)

// Default data-quality thresholds.
const (
	// DefaultNullRateChange flags a null rate that moved by 5 percentage
	// points or more (and significantly).
	DefaultNullRateChange = 0.05
	// DefaultNaNRateChange flags a NaN/Inf rate that moved by 1 point.
	DefaultNaNRateChange = 0.01
	// DefaultTypeErrorRateChange flags a type-error rate that moved by 1 point.
	DefaultTypeErrorRateChange = 0.01
	// DefaultOutOfRangeShare flags 1% or more of the values out of range.
	DefaultOutOfRangeShare = 0.01
	// DefaultNewCategoryShare flags new categories in 1% or more of the
	// values beyond what the reference predicts.
	DefaultNewCategoryShare = 0.01
	// DefaultMinDistinctRatio and DefaultMaxDistinctRatio bound the
	// distinct-count ratio.
	DefaultMinDistinctRatio = 0.5
	DefaultMaxDistinctRatio = 2.0
	// DefaultMinDistinct is the distinct count (expected or current) below
	// which a distinct-count ratio is not judged: 2 → 5 categories is left
	// to PSI.
	DefaultMinDistinct = 10
	// DefaultMinVolumeRatio and DefaultMaxVolumeRatio bound rows per
	// window relative to the expected rows.
	DefaultMinVolumeRatio = 0.5
	DefaultMaxVolumeRatio = 2.0
	// DefaultMaxLag is how long after its end a window may be evaluated.
	DefaultMaxLag = time.Hour
)

// Bounds is the valid range of a numeric feature, both ends included; use
// ±Inf for an open end.
type Bounds struct {
	Min, Max float64
}

// QualityOptions tunes EvaluateQuality. Zero fields mean defaults; a
// negative threshold (either bound, for the ratio checks) disables its
// check. Volume and freshness need inputs a profile does not hold and run
// only when they are given.
type QualityOptions struct {
	// FDR is the Benjamini–Hochberg false discovery rate across the tested
	// checks of one comparison (default 0.05).
	FDR float64
	// MinRows is the fewest values (nulls included for the rate checks,
	// non-null otherwise) on each side for a verdict (default 100).
	MinRows int64
	// NullRateChange is the smallest absolute change of the null rate that
	// counts (default 0.05, five percentage points).
	NullRateChange float64
	// NaNRateChange is the same for NaN and ±Inf values (default 0.01).
	NaNRateChange float64
	// TypeErrorRateChange is the same for type errors (default 0.01).
	TypeErrorRateChange float64
	// OutOfRangeShare is the smallest share of values out of range that
	// counts (default 0.01).
	OutOfRangeShare float64
	// Bounds holds configured valid ranges by feature name; features
	// without one are checked against the reference's [min, max].
	Bounds map[string]Bounds
	// NewCategoryShare is the smallest share of values in new categories,
	// beyond the share the reference predicts, that counts (default 0.01).
	NewCategoryShare float64
	// MinDistinctRatio and MaxDistinctRatio bound the distinct-count ratio
	// (defaults 0.5 and 2).
	MinDistinctRatio, MaxDistinctRatio float64
	// MinDistinct is the distinct count (expected or current) a feature
	// needs for its distinct-count ratio to be judged (default 10).
	MinDistinct float64
	// ExpectedRows is how many rows a window should hold, e.g. the mean of
	// the warm-up windows or RowsPerWindow of a reference made of windows.
	// 0 skips the volume check.
	ExpectedRows float64
	// MinVolumeRatio and MaxVolumeRatio bound rows / ExpectedRows
	// (defaults 0.5 and 2).
	MinVolumeRatio, MaxVolumeRatio float64
	// Now is the evaluation time for the freshness check; the zero time
	// skips it.
	Now time.Time
	// WindowEnd is the end of the window's event time; zero means the
	// current profile's End.
	WindowEnd time.Time
	// MaxLag is how long after WindowEnd the window may be evaluated
	// (default 1h).
	MaxLag time.Duration
}

func (o QualityOptions) withDefaults() QualityOptions {
	def := func(v *float64, d float64) {
		if *v == 0 || math.IsNaN(*v) {
			*v = d
		}
	}
	if !(o.FDR > 0 && o.FDR < 1) {
		o.FDR = DefaultFDR
	}
	if o.MinRows <= 0 {
		o.MinRows = DefaultMinRows
	}
	def(&o.NullRateChange, DefaultNullRateChange)
	def(&o.NaNRateChange, DefaultNaNRateChange)
	def(&o.TypeErrorRateChange, DefaultTypeErrorRateChange)
	def(&o.OutOfRangeShare, DefaultOutOfRangeShare)
	def(&o.NewCategoryShare, DefaultNewCategoryShare)
	def(&o.MinDistinctRatio, DefaultMinDistinctRatio)
	def(&o.MaxDistinctRatio, DefaultMaxDistinctRatio)
	def(&o.MinDistinct, DefaultMinDistinct)
	def(&o.MinVolumeRatio, DefaultMinVolumeRatio)
	def(&o.MaxVolumeRatio, DefaultMaxVolumeRatio)
	if o.MaxLag == 0 {
		o.MaxLag = DefaultMaxLag
	}
	return o
}

// QualityFinding is the outcome of one data-quality check of one feature
// (or of the whole window, for volume and freshness).
//
// Tested checks (rates, out of range against the reference, new
// categories, volume) are decided like drift: a violation needs a p-value
// that survives Benjamini–Hochberg across the tested checks at FDR and an
// effect that reaches its threshold, so noise in small windows and trivial
// changes in huge ones are both ignored. The other checks (distinct-count
// ratio, configured bounds, freshness) compare with their threshold alone.
type QualityFinding struct {
	// Feature is the feature's name, or "" for volume and freshness.
	Feature string
	// Check is one of the Check constants.
	Check string
	// Verdict is violation, ok or insufficient_data.
	Verdict Verdict
	// Ref and Cur are what the check measures on each side. Rates and
	// shares: the reference's and the window's (for new_category, Ref is
	// the share the reference predicts). distinct_ratio: the distinct
	// count the reference predicts for this many values, and the window's.
	// volume: ExpectedRows and rows. freshness: 0 and the lag in seconds.
	Ref, Cur float64
	// Score is the effect compared with Threshold: the absolute change of a
	// rate, the share out of range, the excess share of new categories, a
	// ratio (Cur/Ref), or the lag in seconds. For a ratio, Threshold is the
	// bound on the side the ratio lies.
	Score, Threshold float64
	// Tested says whether a test ran: false for insufficient data and for
	// the checks decided by their threshold alone (distinct_ratio,
	// out_of_range against configured bounds, freshness).
	Tested bool
	// PValue is the test's p-value under "nothing changed" and AdjustedP
	// its Benjamini–Hochberg adjustment across the tested findings; both
	// are 0 when Tested is false.
	PValue, AdjustedP float64
	// Bounds is the range out_of_range checked (the reference's min and max
	// or the configured bounds).
	Bounds Bounds
	// Top lists, for new_category, up to three of the largest new
	// categories with their current shares (CurShare).
	Top []BinShift
	// Note says why a finding is insufficient_data.
	Note string
}

// EvaluateQuality runs the data-quality checks of cur against ref: first
// the window-level checks (volume when opts.ExpectedRows is set, freshness
// when opts.Now is set), then per feature of cur, in order, null_rate and
// type_errors, plus nan_rate and out_of_range for numeric features or
// new_category and distinct_ratio for categorical ones. A feature missing
// from ref, or of another kind there, gets insufficient_data.
func EvaluateQuality(ref, cur *sketch.Profile, opts QualityOptions) []QualityFinding {
	opts = opts.withDefaults()
	if cur == nil {
		return nil
	}
	var out []QualityFinding
	if opts.enabled(CheckVolume) {
		out = append(out, volume(cur.Rows, opts))
	}
	if opts.enabled(CheckFreshness) {
		out = append(out, freshness(cur, opts))
	}
	for _, cf := range cur.Features {
		var rf *sketch.Feature
		if ref != nil {
			rf = ref.Feature(cf.Name)
		}
		out = append(out, featureQuality(rf, cf, opts)...)
	}
	decideQuality(out, opts)
	return out
}

func featureQuality(rf, cf *sketch.Feature, opts QualityOptions) []QualityFinding {
	checks := []string{CheckNullRate, CheckTypeErrors, CheckNaNRate, CheckOutOfRange}
	if cf.Cat != nil {
		checks = []string{CheckNullRate, CheckTypeErrors, CheckNewCategory, CheckDistinctRatio}
	}
	note := ""
	switch {
	case rf == nil:
		note = "feature not in reference"
	case rf.Kind != cf.Kind:
		note = "reference has kind " + rf.Kind.String()
	}
	var out []QualityFinding
	for _, c := range checks {
		if !opts.enabled(c) {
			continue
		}
		var q QualityFinding
		switch {
		case note != "":
			q = insufficient("%s", note)
		case c == CheckNullRate:
			q = rateCheck(rf.Nulls()-rf.TypeErrors, rf.Total(), cf.Nulls()-cf.TypeErrors, cf.Total(), opts.NullRateChange, opts)
		case c == CheckTypeErrors:
			q = rateCheck(rf.TypeErrors, rf.Total(), cf.TypeErrors, cf.Total(), opts.TypeErrorRateChange, opts)
		case c == CheckNaNRate:
			q = rateCheck(rf.Num.NaNs()+rf.Num.Infs(), rf.Total(), cf.Num.NaNs()+cf.Num.Infs(), cf.Total(), opts.NaNRateChange, opts)
		case c == CheckOutOfRange:
			q = outOfRange(cf.Name, rf.Num, cf.Num, opts)
		case c == CheckNewCategory:
			q = newCategory(rf.Cat, cf.Cat, opts)
		case c == CheckDistinctRatio:
			q = distinctRatio(rf.Cat, cf.Cat, opts)
		}
		q.Feature, q.Check = cf.Name, c
		out = append(out, q)
	}
	return out
}

// enabled reports whether a check runs: a negative threshold disables it,
// and volume and freshness need their inputs.
func (o QualityOptions) enabled(check string) bool {
	switch check {
	case CheckNullRate:
		return o.NullRateChange >= 0
	case CheckTypeErrors:
		return o.TypeErrorRateChange >= 0
	case CheckNaNRate:
		return o.NaNRateChange >= 0
	case CheckOutOfRange:
		return o.OutOfRangeShare >= 0
	case CheckNewCategory:
		return o.NewCategoryShare >= 0
	case CheckDistinctRatio:
		return o.MinDistinctRatio >= 0 && o.MaxDistinctRatio >= 0
	case CheckVolume:
		return o.ExpectedRows > 0 && o.MinVolumeRatio >= 0 && o.MaxVolumeRatio >= 0
	case CheckFreshness:
		return !o.Now.IsZero() && o.MaxLag > 0
	}
	return false
}

// decideQuality applies Benjamini–Hochberg across the tested findings and
// sets every verdict that is not insufficient_data.
func decideQuality(qs []QualityFinding, opts QualityOptions) {
	var idx []int
	var ps []float64
	for i, q := range qs {
		if q.Tested {
			idx = append(idx, i)
			ps = append(ps, q.PValue)
		}
	}
	for k, a := range BenjaminiHochberg(ps) {
		qs[idx[k]].AdjustedP = a
	}
	for i := range qs {
		q := &qs[i]
		if q.Verdict == InsufficientData {
			continue
		}
		q.Verdict = OK
		if q.Tested && q.AdjustedP > opts.FDR {
			continue
		}
		switch q.Check {
		case CheckDistinctRatio, CheckVolume:
			if q.Score < q.Threshold && q.Score < 1 || q.Score > q.Threshold && q.Score > 1 {
				q.Verdict = Violation
			}
		case CheckFreshness:
			if q.Score > q.Threshold {
				q.Verdict = Violation
			}
		default:
			if q.Score >= q.Threshold {
				q.Verdict = Violation
			}
		}
	}
}

func insufficient(format string, args ...any) QualityFinding {
	return QualityFinding{Verdict: InsufficientData, Note: fmt.Sprintf(format, args...)}
}

// rateCheck compares the rates k1/n1 and k2/n2 with a two-sided
// two-proportion z-test.
func rateCheck(k1, n1, k2, n2 int64, change float64, opts QualityOptions) (q QualityFinding) {
	if n1 < opts.MinRows || n2 < opts.MinRows {
		q = insufficient("%d reference and %d current values, need %d each", n1, n2, opts.MinRows)
	} else {
		q.PValue, q.Tested = TwoProportionP(k1, n1, k2, n2), true
	}
	q.Ref, q.Cur = rate(k1, n1), rate(k2, n2)
	q.Score, q.Threshold = math.Abs(q.Cur-q.Ref), change
	return q
}

// TwoProportionP returns the two-sided p-value of the pooled two-proportion
// z-test of k1 of n1 against k2 of n2: z = (p₂−p₁)/√(p̂(1−p̂)(1/n₁+1/n₂))
// with p̂ = (k₁+k₂)/(n₁+n₂). It is 1 when either side is empty or the
// pooled rate is 0 or 1.
func TwoProportionP(k1, n1, k2, n2 int64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	a, b := float64(n1), float64(n2)
	pool := float64(k1+k2) / (a + b)
	v := pool * (1 - pool) * (1/a + 1/b)
	if !(v > 0) {
		return 1
	}
	z := (float64(k2)/b - float64(k1)/a) / math.Sqrt(v)
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// outOfRange measures the share of cur's finite values outside the
// configured bounds of the feature or, without them, outside ref's exact
// [min, max]. Against the reference the share is tested: when both sides
// come from one continuous distribution, the number of m current values
// outside the range of n reference values is beta-binomial(m, 2, n−1)
// (the mass outside a sample's range is Beta(2, n−1)); ties only make it
// smaller, so the test is conservative on discrete data.
func outOfRange(name string, ref, cur *sketch.Numeric, opts QualityOptions) (q QualityFinding) {
	b, configured := opts.Bounds[name]
	if !configured {
		b = Bounds{Min: ref.Min(), Max: ref.Max()}
	}
	if cur.Count() < opts.MinRows || !configured && ref.Count() < opts.MinRows {
		return insufficient("%d reference and %d current values, need %d each", ref.Count(), cur.Count(), opts.MinRows)
	}
	q.Bounds, q.Threshold = b, opts.OutOfRangeShare
	if configured {
		q.Ref = outside(ref, b)
	}
	q.Cur = outside(cur, b)
	q.Score = q.Cur
	if !configured {
		k := int64(math.Round(q.Cur * float64(cur.Count())))
		q.PValue, q.Tested = OutsideRangeP(k, cur.Count(), ref.Count()), true
	}
	return q
}

// outside returns the share of n's finite values outside b.
func outside(n *sketch.Numeric, b Bounds) float64 {
	if n.Count() == 0 {
		return 0
	}
	s := 0.0
	if b.Min > n.Min() {
		s += n.CDFBelow(b.Min)
	}
	if b.Max < n.Max() {
		s += 1 - n.CDF(b.Max)
	}
	return clamp01(s)
}

// OutsideRangeP returns P(K ≥ k) for K ~ beta-binomial(m, 2, n−1): the
// chance that at least k of m new values fall outside the range of n
// values from the same continuous distribution. When K's mean 2m/(n+1)
// exceeds 1e4 (m ≫ n), it uses the limit K/m → U ~ Beta(2, n−1),
// P(U ≥ u) = (1−u)^(n−1)·(1 + (n−1)·u), instead of summing the series.
func OutsideRangeP(k, m, n int64) float64 {
	if k <= 0 || m <= 0 || n < 2 {
		return 1
	}
	if k > m {
		return 0
	}
	fm, fn, fk := float64(m), float64(n), float64(k)
	mean := 2 * fm / (fn + 1)
	if mean > 1e4 {
		u := (fk - 0.5) / fm
		return clamp01(math.Exp((fn-1)*math.Log1p(-u)) * (1 + (fn-1)*u))
	}
	// log pmf(j) = log C(m,j) + log B(j+2, m−j+n−1) − log B(2, n−1), and
	// pmf(j+1)/pmf(j) = (m−j)/(j+1) · (j+2)/(m−j+n−2).
	pmf := func(j float64) float64 {
		return math.Exp(lchoose(fm, j) + lbeta(j+2, fm-j+fn-1) - lbeta(2, fn-1))
	}
	next := func(term, j float64) float64 { return term * (fm - j) / (j + 1) * (j + 2) / (fm - j + fn - 2) }
	if fk <= mean {
		// Below the mean (< 1e4 terms): 1 − P(K < k), summed from 0.
		var s float64
		term := pmf(0)
		for j := 0.0; j < fk; j++ {
			s += term
			term = next(term, j)
		}
		return clamp01(1 - s)
	}
	// Above the mean the terms only decrease: sum the upper tail until
	// they no longer count (a few hundred thousand terms at most).
	var s float64
	term := pmf(fk)
	for j := fk; j <= fm && term >= 1e-17*s && j < fk+1e6; j++ {
		s += term
		term = next(term, j)
	}
	return clamp01(s)
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

func lbeta(a, b float64) float64 { return lgamma(a) + lgamma(b) - lgamma(a+b) }

// lchoose is log C(n, k) for real n ≥ k ≥ 0.
func lchoose(n, k float64) float64 { return lgamma(n+1) - lgamma(k+1) - lgamma(n-k+1) }

// newCategory measures the share of cur's values in categories ref has not
// counted, and compares it with the share ref predicts: its Other bucket
// plus the Good–Turing estimate of unseen categories (the share of
// categories seen once). The excess is tested with a one-sided Poisson
// test whose rate adds one pseudo-singleton, so a reference with no rare
// categories does not make a single new value infinitely significant.
// When either side overflowed MaxCategories the current share is an upper
// bound.
func newCategory(ref, cur *sketch.Categorical, opts QualityOptions) (q QualityFinding) {
	q.Threshold = opts.NewCategoryShare
	n, m := ref.Count(), cur.Count()
	if n < opts.MinRows || m < opts.MinRows {
		return insufficient("%d reference and %d current values, need %d each", n, m, opts.MinRows)
	}
	var singletons int64
	for _, c := range ref.Counts() {
		if c.Count == 1 {
			singletons++
		}
	}
	var known int64
	var fresh []sketch.CategoryCount
	for _, c := range cur.Counts() {
		if ref.CountOf(c.Value) > 0 {
			known += c.Count
		} else {
			fresh = append(fresh, c)
		}
	}
	k := m - known
	q.Ref = float64(ref.Other()+singletons) / float64(n)
	q.Cur = float64(k) / float64(m)
	q.Score = q.Cur - q.Ref
	lambda := float64(m) * float64(ref.Other()+singletons+1) / float64(n+1)
	q.PValue, q.Tested = 1, true
	if k > 0 {
		q.PValue = GammaP(float64(k), lambda) // P(Poisson(λ) ≥ k)
	}
	slices.SortStableFunc(fresh, func(a, b sketch.CategoryCount) int { return cmp.Compare(b.Count, a.Count) })
	for _, c := range fresh[:min(3, len(fresh))] {
		q.Top = append(q.Top, BinShift{Label: c.Value, CurShare: float64(c.Count) / float64(m)})
	}
	return q
}

// distinctRatio compares cur's distinct count with the distinct count ref
// predicts for a sample of cur's size (ExpectedDistinct).
func distinctRatio(ref, cur *sketch.Categorical, opts QualityOptions) (q QualityFinding) {
	n, m := ref.Count(), cur.Count()
	if n < opts.MinRows || m < opts.MinRows {
		return insufficient("%d reference and %d current values, need %d each", n, m, opts.MinRows)
	}
	e, ok := ExpectedDistinct(ref, m)
	if !ok {
		return insufficient("the reference has fewer values (%d) than the window (%d) and more categories than it counts exactly", n, m)
	}
	q.Ref, q.Cur = e, cur.Distinct()
	if max(q.Ref, q.Cur) < opts.MinDistinct || !(q.Ref > 0) {
		return insufficient("%.0f distinct values expected and %.0f seen, need %.0f", q.Ref, q.Cur, opts.MinDistinct)
	}
	q.Score = q.Cur / q.Ref
	q.Threshold = opts.MaxDistinctRatio
	if q.Score < 1 {
		q.Threshold = opts.MinDistinctRatio
	}
	return q
}

// ExpectedDistinct returns how many distinct values a sample of m values
// from the reference's distribution is expected to hold (Chao et al. 2014,
// "Rarefaction and extrapolation with Hill numbers"). For m ≤ n (the
// reference's values) it is the rarefied count Σ 1 − C(n−xᵢ, m)/C(n, m)
// over the category counts xᵢ; the Other bucket, if any, is treated as
// (Distinct − Len) categories with geometrically distributed counts, which
// overstates the count on tails heavier than that (+17% on a Zipf tail
// with 100 of 1600 categories counted). For m > n it extrapolates with
// the Chao1 estimate of unseen categories,
// D + f̂₀·(1 − (1 − f₁/(n·f̂₀ + f₁))^(m−n)), which understates long tails
// the further it reaches (−8% at m = 2n, −18% at 5n on a Zipf tail) and
// needs exact counts: ok is false when the reference overflowed
// MaxCategories and m > n.
func ExpectedDistinct(ref *sketch.Categorical, m int64) (float64, bool) {
	n := ref.Count()
	if n == 0 || m <= 0 {
		return 0, n > 0
	}
	counts := ref.Counts()
	if m <= n {
		fn, fm := float64(n), float64(m)
		base := lchoose(fn, fm)
		seen := func(x float64) float64 {
			if fn-x < fm {
				return 1
			}
			return 1 - math.Exp(lchoose(fn-x, fm)-base)
		}
		var e float64
		for _, c := range counts {
			e += seen(float64(c.Count))
		}
		if o := ref.Other(); o > 0 {
			// k categories with geometric counts of mean o/k; each is
			// missed with probability E[(1−X/n)^m] ≈ E[aˣ], a = e^(−m/n),
			// which for X ~ geometric(q) on 1, 2, … is q·a/(1−(1−q)·a).
			k := max(1, ref.Distinct()-float64(ref.Len()))
			q := min(1, k/float64(o))
			a := math.Exp(-fm / fn)
			e += k * (1 - q*a/(1-(1-q)*a))
		}
		return e, true
	}
	if ref.Other() > 0 {
		return 0, false
	}
	var f1, f2 float64
	for _, c := range counts {
		switch c.Count {
		case 1:
			f1++
		case 2:
			f2++
		}
	}
	d := float64(len(counts))
	if f1 == 0 {
		return d, true
	}
	fn := float64(n)
	f0 := (fn - 1) / fn * f1 * (f1 - 1) / 2
	if f2 > 0 {
		f0 = (fn - 1) / fn * f1 * f1 / (2 * f2)
	}
	if f0 == 0 {
		return d, true
	}
	return d + f0*(1-math.Pow(1-f1/(fn*f0+f1), float64(m-n))), true
}

// volume compares the window's rows with ExpectedRows: a two-sided Poisson
// test of the count, and the ratio against its bounds.
func volume(rows int64, opts QualityOptions) QualityFinding {
	e := opts.ExpectedRows
	q := QualityFinding{Check: CheckVolume, Ref: e, Cur: float64(rows), Tested: true}
	q.Score = q.Cur / e
	q.Threshold = opts.MaxVolumeRatio
	if q.Score < 1 {
		q.Threshold = opts.MinVolumeRatio
	}
	k := float64(rows)
	var tail float64
	if k < e {
		tail = GammaQ(k+1, e) // P(X ≤ k)
	} else {
		tail = 1
		if k > 0 {
			tail = GammaP(k, e) // P(X ≥ k)
		}
	}
	q.PValue = min(1, 2*tail)
	return q
}

// RowsPerWindow returns the rows a window of the given length is expected
// to hold at the reference's rate: ref.Rows × window / (ref.End −
// ref.Start). It is meant for references built from windows (warm-up or a
// trailing ring), whose bounds span real traffic; it is 0 when the
// reference has no bounds, so a training baseline needs ExpectedRows set
// from elsewhere.
func RowsPerWindow(ref *sketch.Profile, window time.Duration) float64 {
	if ref == nil || ref.Start.IsZero() || ref.End.IsZero() || !ref.End.After(ref.Start) || window <= 0 {
		return 0
	}
	return float64(ref.Rows) * window.Seconds() / ref.End.Sub(ref.Start).Seconds()
}

// freshness measures how long after the window's end it is evaluated.
func freshness(cur *sketch.Profile, opts QualityOptions) QualityFinding {
	end := opts.WindowEnd
	if end.IsZero() {
		end = cur.End
	}
	if end.IsZero() {
		q := insufficient("window end unknown")
		q.Check = CheckFreshness
		return q
	}
	lag := opts.Now.Sub(end).Seconds()
	return QualityFinding{Check: CheckFreshness, Cur: lag, Score: lag, Threshold: opts.MaxLag.Seconds()}
}

// Summary returns one line saying what the check found, e.g.
// "null rate 0.2% → 8.1%" or "12k rows, expected 48k (0.25×)".
func (q QualityFinding) Summary() string {
	if q.Verdict == InsufficientData {
		if q.Note != "" {
			return "insufficient data: " + q.Note
		}
		return "insufficient data"
	}
	switch q.Check {
	case CheckNullRate:
		return "null rate " + Percent(q.Ref) + " → " + Percent(q.Cur)
	case CheckNaNRate:
		return "NaN/Inf rate " + Percent(q.Ref) + " → " + Percent(q.Cur)
	case CheckTypeErrors:
		return "type errors " + Percent(q.Ref) + " → " + Percent(q.Cur) + " of values"
	case CheckOutOfRange:
		where := "the reference range"
		if !q.Tested {
			where = "bounds"
		}
		return fmt.Sprintf("%s of values outside %s [%s, %s]", Percent(q.Cur), where, Compact(q.Bounds.Min), Compact(q.Bounds.Max))
	case CheckNewCategory:
		s := fmt.Sprintf("new categories %s of values (expected %s)", Percent(q.Cur), Percent(q.Ref))
		var tops []string
		for _, t := range q.Top {
			tops = append(tops, quoteLabel(t.Label)+" "+Percent(t.CurShare))
		}
		if len(tops) > 0 {
			s += ": " + strings.Join(tops, ", ")
		}
		return s
	case CheckDistinctRatio:
		return fmt.Sprintf("%s distinct values, expected %s (%s×)", Compact(q.Cur), Compact(q.Ref), Compact(q.Score))
	case CheckVolume:
		return fmt.Sprintf("%s rows, expected %s (%s×)", Compact(q.Cur), Compact(q.Ref), Compact(q.Score))
	case CheckFreshness:
		lag := time.Duration(q.Cur * float64(time.Second)).Round(time.Second)
		return fmt.Sprintf("evaluated %s after the window's end (max %s)", lag, time.Duration(q.Threshold*float64(time.Second)))
	}
	return q.Check
}
