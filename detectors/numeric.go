package detectors

import (
	"math"

	"github.com/driftmon/driftmon/sketch"
)

// numeric fills f for a numeric feature: KS (primary), PSI on reference
// quantile bins, Wasserstein-1, Jensen–Shannon and Hellinger on the PSI bins.
func numeric(f *Finding, ref, cur *sketch.Numeric, opts Options) {
	f.Detector = DetectorKS
	f.Threshold = opts.MinKS
	f.RefRows, f.CurRows = ref.Count(), cur.Count()
	f.Explanation.RefNullRate = rate(ref.Nulls()+ref.NaNs(), ref.Total())
	f.Explanation.CurNullRate = rate(cur.Nulls()+cur.NaNs(), cur.Total())
	var bins Bins
	var psi float64
	if ref.Count() > 0 && cur.Count() > 0 {
		bins = NumericBins(ref, cur, opts.PSIBins)
		psi, f.Explanation.Top = bins.PSI()
		f.PSI = psi
		e := &f.Explanation
		e.RefP5, e.RefP50, e.RefP95 = ref.Quantile(0.05), ref.Quantile(0.5), ref.Quantile(0.95)
		e.CurP5, e.CurP50, e.CurP95 = cur.Quantile(0.05), cur.Quantile(0.5), cur.Quantile(0.95)
		e.RefMean, e.CurMean = ref.Mean(), cur.Mean()
	}
	if tooFew(f, ref.Count(), cur.Count(), opts) {
		return
	}
	c := evalCurves(ref, cur)
	d, fRef, fCur := c.ksAt()
	scale := wassersteinScale(ref, cur)
	w := c.wasserstein(scale)
	f.Scores = map[string]float64{
		DetectorPSI:         psi,
		DetectorWasserstein: w,
		DetectorJS:          bins.JensenShannon(),
		DetectorHellinger:   bins.Hellinger(),
	}
	if opts.KSSketchError {
		eps := ref.CDFError() + cur.CDFError()
		f.Scores[ScoreKSSketchError] = eps
		d = max(0, d-eps)
	}
	f.Scores[DetectorKS] = d
	f.Score = d
	f.PValue = KSPValue(d, ref.Count(), cur.Count())
	f.PSIThreshold = PSIThreshold(len(bins.Ref), bins.refTotal(), bins.curTotal(), opts.FDR)
	alpha := opts.FDR
	f.Effects = []Effect{{Statistic: DetectorKS, Value: d, Min: opts.MinKS,
		Lower: max(0, d-ksMargin(fRef, fCur, cur.Count(), ref.Count(), alpha))}}
	if opts.MinWasserstein > 0 {
		jRef, jCur := c.noiseL1()
		margin := wassersteinMargin(jRef/scale, jCur/scale, cur.Count(), ref.Count(), alpha)
		f.Effects = append(f.Effects, Effect{Statistic: DetectorWasserstein, Value: w, Min: opts.MinWasserstein,
			Lower: max(0, w-margin)})
	}
}

func rate(k, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// curves holds both CDFs evaluated at the union of their knots: the value
// at the knot (le) and just below it (lt).
type curves struct {
	xs                 []float64
	aLE, aLT, bLE, bLT []float64
}

func evalCurves(a, b *sketch.Numeric) curves {
	xs := mergeSorted(a.Points(), b.Points())
	buf := make([]float64, 4*len(xs))
	c := curves{xs: xs, aLE: buf[:len(xs)], aLT: buf[len(xs) : 2*len(xs)], bLE: buf[2*len(xs) : 3*len(xs)], bLT: buf[3*len(xs):]}
	a.CDFSorted(xs, c.aLE, c.aLT)
	b.CDFSorted(xs, c.bLE, c.bLT)
	return c
}

// mergeSorted returns the sorted union of two ascending slices, without
// duplicates.
func mergeSorted(p, q []float64) []float64 {
	out := make([]float64, 0, len(p)+len(q))
	i, j := 0, 0
	for i < len(p) || j < len(q) {
		var x float64
		switch {
		case j == len(q) || (i < len(p) && p[i] <= q[j]):
			x = p[i]
			i++
		default:
			x = q[j]
			j++
		}
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// KS returns the two-sample Kolmogorov–Smirnov statistic
// D = sup |F_a − F_b| over the finite values. Both sketched CDFs are step
// functions (exact counts) or piecewise linear between their knots
// (digests), so evaluating both one-sided limits at the union of the knots
// gives the exact supremum of the sketched CDFs; with exact counts on both
// sides D is the exact two-sample statistic.
func KS(a, b *sketch.Numeric) float64 {
	if a.Count() == 0 || b.Count() == 0 {
		return 0
	}
	return evalCurves(a, b).ks()
}

func (c curves) ks() float64 {
	d, _, _ := c.ksAt()
	return d
}

// ksAt returns D and both CDFs where the supremum is reached.
func (c curves) ksAt() (d, fa, fb float64) {
	for i := range c.xs {
		if v := math.Abs(c.aLE[i] - c.bLE[i]); v > d {
			d, fa, fb = v, c.aLE[i], c.bLE[i]
		}
		if v := math.Abs(c.aLT[i] - c.bLT[i]); v > d {
			d, fa, fb = v, c.aLT[i], c.bLT[i]
		}
	}
	return min(d, 1), fa, fb
}

// KSPValue returns the asymptotic p-value of a two-sample KS statistic d
// with sample sizes n and m: Q_KS((√nₑ + 0.12 + 0.11/√nₑ)·d) with
// nₑ = nm/(n+m) (Stephens' small-sample correction, as in Numerical
// Recipes), where Q_KS(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²).
func KSPValue(d float64, n, m int64) float64 {
	if n <= 0 || m <= 0 || !(d > 0) {
		return 1
	}
	ne := float64(n) * float64(m) / (float64(n) + float64(m))
	s := math.Sqrt(ne)
	return KolmogorovQ((s + 0.12 + 0.11/s) * d)
}

// KolmogorovQ is the survival function of the Kolmogorov distribution,
// P(K > λ). It uses the Jacobi-theta form for small λ, where the
// alternating series converges slowly.
func KolmogorovQ(lambda float64) float64 {
	if !(lambda > 0) {
		return 1
	}
	if lambda < 1.18 {
		// P(K ≤ λ) = √(2π)/λ Σ_{k≥1} exp(−(2k−1)²π²/(8λ²))
		y := math.Exp(-math.Pi * math.Pi / (8 * lambda * lambda))
		var s float64
		for k := 1; k <= 6; k++ {
			s += math.Pow(y, float64((2*k-1)*(2*k-1)))
		}
		return clamp01(1 - math.Sqrt(2*math.Pi)/lambda*s)
	}
	x := math.Exp(-2 * lambda * lambda)
	var s float64
	sign := 1.0
	for k := 1; k <= 100; k++ {
		t := math.Pow(x, float64(k*k))
		s += sign * t
		if t < 1e-17 {
			break
		}
		sign = -sign
	}
	return clamp01(2 * s)
}

func clamp01(v float64) float64 { return max(0, min(1, v)) }

// Wasserstein returns the Wasserstein-1 distance ∫|F_a − F_b| dx between
// the finite values, divided by a's standard deviation (by b's when a's is
// 0, unnormalised when both are 0), so it reads as "how many reference
// standard deviations the mass moved". Between consecutive knots the
// difference of the sketched CDFs is linear (or constant), so the integral
// is computed exactly for the sketches.
func Wasserstein(a, b *sketch.Numeric) float64 {
	if a.Count() == 0 || b.Count() == 0 {
		return 0
	}
	return evalCurves(a, b).wasserstein(wassersteinScale(a, b))
}

// wassersteinScale is what W1 is divided by: a's standard deviation, else b's,
// else 1.
func wassersteinScale(a, b *sketch.Numeric) float64 {
	scale := a.Std()
	if !(scale > 0) {
		scale = b.Std()
	}
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 1
	}
	return scale
}

func (c curves) wasserstein(scale float64) float64 {
	var w float64
	for i := 0; i+1 < len(c.xs); i++ {
		h := c.xs[i+1] - c.xs[i]
		d0 := c.aLE[i] - c.bLE[i]
		d1 := c.aLT[i+1] - c.bLT[i+1]
		if (d0 >= 0) == (d1 >= 0) {
			w += (math.Abs(d0) + math.Abs(d1)) / 2 * h
		} else if s := math.Abs(d0) + math.Abs(d1); s > 0 {
			w += (d0*d0 + d1*d1) / (2 * s) * h
		}
	}
	w /= scale
	if math.IsInf(w, 0) || math.IsNaN(w) {
		return math.MaxFloat64
	}
	return w
}

// noiseL1 returns J = ∫√(F(1−F))dx for both CDFs: the L1 size of an empirical
// CDF's sampling noise per √n, which scales W1's uncertainty (see Effect). Each
// segment between knots uses the CDF at its midpoint.
func (c curves) noiseL1() (ja, jb float64) {
	for i := 0; i+1 < len(c.xs); i++ {
		h := c.xs[i+1] - c.xs[i]
		fa := (c.aLE[i] + c.aLT[i+1]) / 2
		fb := (c.bLE[i] + c.bLT[i+1]) / 2
		ja += math.Sqrt(max(0, fa*(1-fa))) * h
		jb += math.Sqrt(max(0, fb*(1-fb))) * h
	}
	return ja, jb
}
