package detectors

import (
	"math"
	"strconv"
	"strings"
)

// Effect is one effect size of a finding with its sampling uncertainty. The
// effect half of the decision rule compares Lower, not Value, with Min: a
// feature's effect is large enough only when it is above its minimum with
// confidence 1 − FDR. A point estimate carries sampling error of order
// √(1/n + 1/m) (W1 ≈ 0.03σ at n = 2,500, m = 3,200), so a floor judged on the
// point estimate fires on noise in small windows; judged on the lower bound it
// does not, while a clear shift, whose estimate is far above the floor, still
// passes in its first window.
//
// The bounds need no bootstrap; each is the estimate minus a multiple of its
// standard error (delta method), computed from n, m and the sketches:
//
//   - KS D: where the supremum is reached, D is a difference of two
//     empirical CDF values, with standard error √(F(1−F)/m + G(1−G)/n) there
//     (at most ½√(1/n + 1/m)). The multiple is z₁₋α/₂, not z₁₋α: D is the
//     largest of many such differences, and that maximum's upward bias cost
//     the one-sided z₁₋α bound its coverage (0.90 measured, 0.95 with z₁₋α/₂).
//   - W1 = ∫|F − G|dx: its noise is ∫±(noise of F − noise of G)dx, whose
//     standard deviation is at most √(J²_ref/m + J²_cur/n) with
//     J = ∫√(F(1−F))dx (Minkowski), in units of the reference's σ.
//   - TVD (total variation distance of categorical shares) is a metric, so
//     the estimate exceeds the true value by at most the distance between
//     the empirical and the true shares; its 1 − α quantile is bounded for
//     any number of categories by ½√(χ²₁₋α(K−1)·(1/n + 1/m)) (see tvdMargin).
//   - PSI is close to a noncentral χ² divided by nₑ = nm/(n+m), with B−1
//     degrees of freedom and noncentrality nₑ·PSI_true; its bound is the
//     smallest PSI_true under which the observed value is not in the upper α
//     tail (Patnaik's approximation of the noncentral χ²).
//
// With α = FDR = 0.05 each bound lies below the true value in about 95% of
// samples or more (TestEffectBoundsCover checks them against the exact effects
// of known shifts). The simultaneous Kolmogorov (DKW) band,
// √(ln(2/α)/2·(1/n + 1/m)), would also be valid for D but is 1.4× wider: it
// left the car-loan shift of y_pred_proba (D 0.120 against 50,000 reference
// rows) at a lower bound of 0.0999, below the 0.1 floor. Under
// no drift the bounds are not what stops false alarms (Benjamini–Hochberg is);
// they only have to keep noise from passing the floor, and at the demo's
// 2,500-row windows W1's noise (about 0.036σ) would need a point estimate of
// 0.14σ to pass 0.08σ.
type Effect struct {
	// Statistic is the effect size's name: "ks", "wasserstein", "psi", "tvd".
	Statistic string `json:"statistic"`
	// Value is the point estimate; Lower its lower confidence bound.
	Value float64 `json:"value"`
	Lower float64 `json:"lower_bound"`
	// Min is the configured minimum that Lower must reach.
	Min float64 `json:"min"`
}

// Reached reports whether the effect is above its minimum with confidence. A
// minimum of 0 or less means no effect-size requirement.
func (e Effect) Reached() bool { return e.Min <= 0 || e.Lower >= e.Min }

// String says what was compared, e.g. "W1 0.31σ, lower bound 0.25σ ≥ min 0.08σ"
// or "KS D 0.05, lower bound 0.01 < min 0.1".
func (e Effect) String() string {
	label, unit := effectLabel(e.Statistic)
	cmp := "<"
	if e.Reached() {
		cmp = "≥"
	}
	return label + " " + sig2(e.Value) + unit + ", lower bound " + sig2(e.Lower) + unit + " " + cmp + " min " + sig2(e.Min) + unit
}

func effectLabel(statistic string) (label, unit string) {
	switch statistic {
	case DetectorKS:
		return "KS D", ""
	case DetectorWasserstein:
		return "W1", "σ"
	case DetectorPSI:
		return "PSI", ""
	case DetectorTVD:
		return "TVD", ""
	case DetectorPCAError:
		return "PCA error change", ""
	case DetectorPairTVD:
		return "cells moved", ""
	default:
		return strings.ToUpper(statistic), ""
	}
}

// sig2 formats v with two significant digits: 0.0963 → "0.096", 0.38 → "0.38",
// 0.1 → "0.1", 12.3 → "12".
func sig2(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0) || math.Abs(v) >= 1e15:
		return "∞"
	case v == 0:
		return "0"
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// ksMargin is z₁₋α/₂ times the standard error of the difference of two
// empirical CDF values fRef (of m values) and fCur (of n values) at one point.
func ksMargin(fRef, fCur float64, n, m int64, alpha float64) float64 {
	if n <= 0 || m <= 0 {
		return math.Inf(1)
	}
	return normalQuantile(1-alpha/2) * math.Sqrt(fRef*(1-fRef)/float64(m)+fCur*(1-fCur)/float64(n))
}

// wassersteinMargin is z₁₋α times the largest standard error of W1 between
// two empirical distributions of n (current) and m (reference) values whose
// CDF noise has L1 sizes jRef and jCur (∫√(F(1−F))dx), in the units of the j's.
func wassersteinMargin(jRef, jCur float64, n, m int64, alpha float64) float64 {
	if n <= 0 || m <= 0 {
		return math.Inf(1)
	}
	return normalQuantile(1-alpha) * math.Sqrt(jRef*jRef/float64(m)+jCur*jCur/float64(n))
}

// psiLower is the lower confidence bound of PSI from an observed psi over k+1
// bins with nₑ = 1/(1/n + 1/m): the smallest λ/nₑ such that nₑ·psi is not in the
// upper alpha tail of χ²(k, λ), by bisection on Patnaik's approximation
// χ²(k, λ) ≈ c·χ²(ν), c = (k+2λ)/(k+λ), ν = (k+λ)²/(k+2λ).
func psiLower(psi float64, k int, n, m, alpha float64) float64 {
	if !(psi > 0) || k < 1 || !(n > 0) || !(m > 0) {
		return 0
	}
	ne := 1 / (1/n + 1/m)
	obs := ne * psi
	kk := float64(k)
	tail := func(lambda float64) float64 {
		c := (kk + 2*lambda) / (kk + lambda)
		nu := (kk + lambda) * (kk + lambda) / (kk + 2*lambda)
		return ChiSquareSF(obs/c, nu)
	}
	if tail(0) >= alpha {
		return 0
	}
	lo, hi := 0.0, obs // the tail at λ = obs is about 1/2 > alpha
	for i := 0; i < 100 && hi-lo > 1e-9*max(1, hi); i++ {
		mid := (lo + hi) / 2
		if tail(mid) < alpha {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo / ne
}

// tvdMargin bounds by how much the total variation distance between the
// shares of k bins in samples of n (current) and m (reference) values exceeds
// the true one, with probability 1 − alpha. TVD is a metric, so the excess is
// at most ½·‖noise‖₁, and by Cauchy–Schwarz ½·‖x‖₁ ≤ ½·√(Σ xᵢ²/wᵢ) for
// shares w; Σ xᵢ²/wᵢ·nₑ is Pearson's χ²(k−1). The bound holds for any number
// of bins: a set of categories chosen from the data (as TVD's largest-move
// set is) would be biased upward by many small categories.
func tvdMargin(k int, n, m, alpha float64) float64 {
	if k < 2 || !(n > 0) || !(m > 0) {
		return math.Inf(1)
	}
	return math.Sqrt(ChiSquareQuantile(1-alpha, float64(k-1))*(1/n+1/m)) / 2
}

// normalQuantile returns z with Φ(z) = p, for 0 < p < 1.
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
