package detectors

import (
	"math"

	"github.com/driftmon/driftmon/sketch"
)

// minExpected is the smallest expected count of a chi-square cell; rarer
// categories are pooled so the χ² approximation holds (Cochran's rule).
const minExpected = 5

// categorical fills f for a categorical feature: PSI over the
// CategoricalBins (one per category, rare ones pooled; primary effect
// size) and total variation distance (the other effect size: PSI is a poor
// one when there are few categories, 30/50/20% → 45/40/15% has PSI 0.098
// but moves 15% of the values), tested with a chi-square homogeneity test.
func categorical(f *Finding, ref, cur *sketch.Categorical, opts Options) {
	f.Detector = DetectorPSI
	f.Threshold = opts.MinPSI
	f.RefRows, f.CurRows = ref.Count(), cur.Count()
	f.Explanation.RefNullRate = rate(ref.Nulls(), ref.Total())
	f.Explanation.CurNullRate = rate(cur.Nulls(), cur.Total())
	bins := CategoricalBins(ref, cur)
	psi, _ := bins.PSI()
	f.PSI = psi
	f.Explanation.Top = bins.LargestMoves(3)
	if tooFew(f, ref.Count(), cur.Count(), opts) {
		return
	}
	stat, dof := ChiSquareHomogeneity(bins.Ref, bins.Cur)
	f.Score = psi
	f.PValue = ChiSquareSF(stat, dof)
	f.PSIThreshold = PSIThreshold(len(bins.Ref), bins.refTotal(), bins.curTotal(), opts.FDR)
	f.Scores = map[string]float64{
		DetectorPSI:       psi,
		DetectorChi2:      stat,
		DetectorJS:        bins.JensenShannon(),
		DetectorHellinger: bins.Hellinger(),
	}
	tvd := bins.TVD()
	f.Scores[DetectorTVD] = tvd
	n, m := bins.curTotal(), bins.refTotal()
	f.Effects = []Effect{
		{Statistic: DetectorPSI, Value: psi, Min: opts.MinPSI, Lower: psiLower(psi, len(bins.Ref)-1, m, n, opts.FDR)},
	}
	if opts.MinTVD > 0 {
		f.Effects = append(f.Effects, Effect{Statistic: DetectorTVD, Value: tvd, Min: opts.MinTVD,
			Lower: max(0, tvd-tvdMargin(len(bins.Ref), n, m, opts.FDR))})
	}
}

// ChiSquareHomogeneity returns Pearson's chi-square statistic for the 2×K
// table of the two count vectors, and its degrees of freedom. Cells whose
// expected count would be below 5 on the smaller side are pooled into one
// cell first; if the pooled cell is still too small it joins the smallest
// remaining cell.
func ChiSquareHomogeneity(a, b []float64) (stat, dof float64) {
	na, nb := sum(a), sum(b)
	if na <= 0 || nb <= 0 {
		return 0, 0
	}
	small := min(na, nb) / (na + nb) // expected count = small × cell total on the smaller side
	type cell struct{ a, b float64 }
	var cells []cell
	var pooled cell
	for i := range a {
		t := a[i] + b[i]
		if t == 0 {
			continue
		}
		if small*t < minExpected {
			pooled.a += a[i]
			pooled.b += b[i]
			continue
		}
		cells = append(cells, cell{a[i], b[i]})
	}
	if pooled.a+pooled.b > 0 {
		if small*(pooled.a+pooled.b) < minExpected && len(cells) > 0 {
			j := 0
			for i := range cells {
				if cells[i].a+cells[i].b < cells[j].a+cells[j].b {
					j = i
				}
			}
			cells[j].a += pooled.a
			cells[j].b += pooled.b
		} else {
			cells = append(cells, pooled)
		}
	}
	if len(cells) < 2 {
		return 0, 0
	}
	n := na + nb
	for _, c := range cells {
		t := c.a + c.b
		ea, eb := na*t/n, nb*t/n
		stat += (c.a-ea)*(c.a-ea)/ea + (c.b-eb)*(c.b-eb)/eb
	}
	return stat, float64(len(cells) - 1)
}

// ChiSquareSF returns P(X > x) for X ~ χ²(k): the regularized upper
// incomplete gamma function Q(k/2, x/2). It is 1 for k ≤ 0.
func ChiSquareSF(x, k float64) float64 {
	if !(k > 0) || !(x > 0) {
		return 1
	}
	return GammaQ(k/2, x/2)
}

// ChiSquareQuantile returns x with P(X ≤ x) = p for X ~ χ²(k), by
// bisection on the regularized gamma function.
func ChiSquareQuantile(p, k float64) float64 {
	if !(k > 0) || !(p > 0) {
		return 0
	}
	if p >= 1 {
		return math.Inf(1)
	}
	lo, hi := 0.0, k+10*math.Sqrt(2*k)+10
	for GammaP(k/2, hi/2) < p {
		hi *= 2
	}
	for i := 0; i < 200 && hi-lo > 1e-12*hi; i++ {
		mid := (lo + hi) / 2
		if GammaP(k/2, mid/2) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// GammaP returns the regularized lower incomplete gamma function P(a, x).
func GammaP(a, x float64) float64 {
	p, _ := incompleteGamma(a, x)
	return p
}

// GammaQ returns the regularized upper incomplete gamma function
// Q(a, x) = 1 − P(a, x), computed directly in the upper tail so small
// p-values keep their precision.
func GammaQ(a, x float64) float64 {
	_, q := incompleteGamma(a, x)
	return q
}

// incompleteGamma returns P(a, x) and Q(a, x). Each side of a+1 has the
// expansion that converges there (the series below, the continued fraction
// above); the other value is its complement.
func incompleteGamma(a, x float64) (p, q float64) {
	switch {
	case !(a > 0) || math.IsNaN(x):
		return math.NaN(), math.NaN()
	case x <= 0:
		return 0, 1
	case math.IsInf(x, 1):
		return 1, 0
	case x < a+1:
		p = gammaSeries(a, x)
		return p, 1 - p
	}
	q = gammaFraction(a, x)
	return 1 - q, q
}

// gammaSeries evaluates P(a, x) by its power series (x < a+1).
func gammaSeries(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	ap, del := a, 1/a
	s := del
	for i := 0; i < 10000; i++ {
		ap++
		del *= x / ap
		s += del
		if math.Abs(del) < math.Abs(s)*1e-15 {
			break
		}
	}
	return clamp01(s * math.Exp(-x+a*math.Log(x)-lg))
}

// gammaFraction evaluates Q(a, x) by its continued fraction (x ≥ a+1),
// using the modified Lentz method.
func gammaFraction(a, x float64) float64 {
	const tiny = 1e-300
	lg, _ := math.Lgamma(a)
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return clamp01(math.Exp(-x+a*math.Log(x)-lg) * h)
}

// StudentTTwoSided returns P(|T| > t) for T with df degrees of freedom:
// the regularized incomplete beta I_{df/(df+t²)}(df/2, 1/2).
func StudentTTwoSided(t, df float64) float64 {
	if !(df > 0) || math.IsNaN(t) {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return clamp01(BetaI(df/2, 0.5, df/(df+t*t)))
}

// StudentTQuantile returns t with P(T ≤ t) = p for T with df degrees of
// freedom, 0.5 ≤ p < 1, by bisection on StudentTTwoSided.
func StudentTQuantile(p, df float64) float64 {
	if !(p > 0.5) {
		return 0
	}
	tail := 2 * (1 - p)
	lo, hi := 0.0, 1.0
	for StudentTTwoSided(hi, df) > tail && hi < 1e12 {
		hi *= 2
	}
	for i := 0; i < 200 && hi-lo > 1e-12*hi; i++ {
		mid := (lo + hi) / 2
		if StudentTTwoSided(mid, df) > tail {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// BetaI returns the regularized incomplete beta function I_x(a, b), by its
// continued fraction (modified Lentz), on the side where it converges fast.
func BetaI(a, b, x float64) float64 {
	switch {
	case !(a > 0) || !(b > 0) || math.IsNaN(x):
		return math.NaN()
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaFraction(a, b, x) / a
	}
	return 1 - front*betaFraction(b, a, 1-x)/b
}

func betaFraction(a, b, x float64) float64 {
	const tiny = 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	// step takes one term of the continued fraction (modified Lentz) and
	// returns the factor it changed h by.
	step := func(aa float64) float64 {
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		return d * c
	}
	for m := 1; m <= 10000; m++ {
		fm := float64(m)
		m2 := 2 * fm
		step(fm * (b - fm) * x / ((qam + m2) * (a + m2)))
		if del := step(-(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))); math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return h
}
