package detectors

import (
	"math"
	"slices"
	"sort"

	"github.com/driftmon/driftmon/sketch"
)

// PSISmoothing is added to every bin count on both sides before PSI is
// computed, so an empty bin gives a large but finite contribution instead
// of ln(0). Half a count is the Jeffreys (Krichevsky–Trofimov) rule; it
// vanishes as the samples grow and treats both sides alike.
const PSISmoothing = 0.5

// Labels of the pseudo-bins.
const (
	// LabelNull is the bin of null values (and NaN, for numeric features).
	LabelNull = "(null)"
	// LabelOther is the bin of the categorical values that went to a
	// profile's Other bucket (beyond MaxCategories).
	LabelOther = "(other)"
	// LabelRare is the bin into which categories too rare to compare one
	// by one are pooled.
	LabelRare = "(rare)"
)

// Bins is a binned pair of distributions: the bin labels and the (possibly
// fractional, for digests) counts of the reference and the current profile.
type Bins struct {
	Labels   []string
	Ref, Cur []float64
}

func (b *Bins) refTotal() float64 { return sum(b.Ref) }
func (b *Bins) curTotal() float64 { return sum(b.Cur) }

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// NumericBins bins the values of both features at the reference's
// quantiles, with open outer edges (−Inf joins the first bin, +Inf the
// last) and a null bin (nulls and NaN) when either side has any.
//
// Bins are right-closed intervals (e₍ᵢ₋₁₎, eᵢ]. The edges are the reference
// quantiles i/B, i = 1…B−1, deduplicated, so a value that holds much of the
// mass gets one bin rather than several empty ones. When the reference
// keeps exact counts and has at most B distinct values, the edges are those
// values: each bin then holds exactly one reference value (a current value
// between two reference values goes to the bin of the next one up), and the
// bin is labelled by that value.
func NumericBins(ref, cur *sketch.Numeric, nbins int) Bins {
	var edges []float64
	exactBins := false
	if values, _, ok := ref.Exact(); ok && len(values) <= nbins {
		exactBins = true
		if len(values) > 0 {
			edges = values[:len(values)-1]
		}
	} else if ref.Count() > 0 {
		for i := 1; i < nbins; i++ {
			edges = append(edges, ref.Quantile(float64(i)/float64(nbins)))
		}
		edges = slices.Compact(edges)
		// The top quantile can equal the max, which would leave an
		// empty last bin; drop it.
		if k := len(edges); k > 0 && edges[k-1] >= ref.Max() {
			edges = edges[:k-1]
		}
	}
	var b Bins
	for i := 0; i <= len(edges); i++ {
		b.Labels = append(b.Labels, binLabel(edges, i, exactBins, ref))
	}
	b.Ref = numericCounts(ref, edges)
	b.Cur = numericCounts(cur, edges)
	if ref.Nulls()+ref.NaNs()+cur.Nulls()+cur.NaNs() > 0 {
		b.Labels = append(b.Labels, LabelNull)
		b.Ref = append(b.Ref, float64(ref.Nulls()+ref.NaNs()))
		b.Cur = append(b.Cur, float64(cur.Nulls()+cur.NaNs()))
	}
	return b
}

func binLabel(edges []float64, i int, exact bool, ref *sketch.Numeric) string {
	if exact {
		if i < len(edges) {
			return Compact(edges[i])
		}
		return Compact(ref.Max())
	}
	switch {
	case len(edges) == 0:
		return "all"
	case i == 0:
		return "≤ " + Compact(edges[0])
	case i == len(edges):
		return "> " + Compact(edges[i-1])
	}
	return "(" + Compact(edges[i-1]) + ", " + Compact(edges[i]) + "]"
}

// numericCounts returns the counts of n's values in the bins defined by
// edges (plus ±Inf in the outer bins).
func numericCounts(n *sketch.Numeric, edges []float64) []float64 {
	out := make([]float64, len(edges)+1)
	total := float64(n.Count())
	prev := 0.0
	for i, e := range edges {
		c := total * n.CDF(e)
		out[i] = max(0, c-prev)
		prev = max(prev, c)
	}
	out[len(edges)] = max(0, total-prev)
	out[0] += float64(n.NegInfs())
	out[len(edges)] += float64(n.PosInfs())
	return out
}

// CategoricalBins makes one bin per category counted on either side
// (sorted by value), an "(other)" bin for the profiles' Other buckets and a
// "(null)" bin. Categories whose expected count on the smaller side is
// below 5 are pooled into one "(rare)" bin: a long tail of rare categories
// differs from window to window by chance (each window has categories the
// other lacks), and compared one by one those differences would dominate
// both PSI and the chi-square test. A category new in the current window
// with enough values keeps its own bin (reference count 0).
func CategoricalBins(ref, cur *sketch.Categorical) Bins {
	rc, cc := ref.Counts(), cur.Counts()
	na := float64(ref.Total())
	nb := float64(cur.Total())
	// expected count on the smaller side of a cell holding t values
	small := 0.0
	if na+nb > 0 {
		small = min(na, nb) / (na + nb)
	}
	var b Bins
	var rare [2]float64
	add := func(label string, x, y float64) {
		if x+y == 0 {
			return
		}
		if small*(x+y) < minExpected {
			rare[0] += x
			rare[1] += y
			return
		}
		b.Labels = append(b.Labels, label)
		b.Ref = append(b.Ref, x)
		b.Cur = append(b.Cur, y)
	}
	for i, j := 0, 0; i < len(rc) || j < len(cc); {
		switch {
		case j == len(cc) || i < len(rc) && rc[i].Value < cc[j].Value:
			add(rc[i].Value, float64(rc[i].Count), float64(cur.CountOf(rc[i].Value)))
			i++
		case i == len(rc) || cc[j].Value < rc[i].Value:
			add(cc[j].Value, float64(ref.CountOf(cc[j].Value)), float64(cc[j].Count))
			j++
		default:
			add(rc[i].Value, float64(rc[i].Count), float64(cc[j].Count))
			i++
			j++
		}
	}
	add(LabelOther, float64(ref.Other()), float64(cur.Other()))
	add(LabelNull, float64(ref.Nulls()), float64(cur.Nulls()))
	if rare[0]+rare[1] > 0 {
		b.Labels = append(b.Labels, LabelRare)
		b.Ref = append(b.Ref, rare[0])
		b.Cur = append(b.Cur, rare[1])
	}
	return b
}

// shares returns the smoothed shares (c+s)/(n+s·K).
func shares(cs []float64, s float64) []float64 {
	out := make([]float64, len(cs))
	den := sum(cs) + s*float64(len(cs))
	if den == 0 {
		return out
	}
	for i, c := range cs {
		out[i] = (c + s) / den
	}
	return out
}

// PSI returns the population stability index Σ (qᵢ−pᵢ)·ln(qᵢ/pᵢ) over the
// bins (p reference, q current; counts smoothed by PSISmoothing) and the
// three bins contributing most, with their unsmoothed shares.
func (b Bins) PSI() (float64, []BinShift) {
	if len(b.Ref) == 0 || sum(b.Ref) == 0 || sum(b.Cur) == 0 {
		return 0, nil
	}
	p, q := shares(b.Ref, PSISmoothing), shares(b.Cur, PSISmoothing)
	rawP, rawQ := shares(b.Ref, 0), shares(b.Cur, 0)
	var psi float64
	all := make([]BinShift, len(p))
	for i := range p {
		c := (q[i] - p[i]) * math.Log(q[i]/p[i])
		psi += c
		all[i] = BinShift{Label: b.Labels[i], RefShare: rawP[i], CurShare: rawQ[i], Contribution: c}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Contribution > all[j].Contribution })
	if len(all) > 3 {
		all = all[:3]
	}
	return psi, all
}

// LargestMoves returns the (up to k) bins whose shares moved most, largest
// first (ties: larger PSI contribution first): what a person reads as "which
// categories changed".
func (b Bins) LargestMoves(k int) []BinShift {
	if len(b.Ref) == 0 || sum(b.Ref) == 0 || sum(b.Cur) == 0 {
		return nil
	}
	p, q := shares(b.Ref, PSISmoothing), shares(b.Cur, PSISmoothing)
	rawP, rawQ := shares(b.Ref, 0), shares(b.Cur, 0)
	all := make([]BinShift, len(p))
	for i := range p {
		all[i] = BinShift{Label: b.Labels[i], RefShare: rawP[i], CurShare: rawQ[i], Contribution: (q[i] - p[i]) * math.Log(q[i]/p[i])}
	}
	sort.SliceStable(all, func(i, j int) bool {
		di, dj := math.Abs(all[i].CurShare-all[i].RefShare), math.Abs(all[j].CurShare-all[j].RefShare)
		if di != dj {
			return di > dj
		}
		return all[i].Contribution > all[j].Contribution
	})
	return all[:min(k, len(all))]
}

// JensenShannon returns the Jensen–Shannon divergence (base 2, in [0,1])
// between the unsmoothed bin shares.
func (b Bins) JensenShannon() float64 {
	p, q := shares(b.Ref, 0), shares(b.Cur, 0)
	var js float64
	for i := range p {
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			js += p[i] / 2 * math.Log2(p[i]/m)
		}
		if q[i] > 0 {
			js += q[i] / 2 * math.Log2(q[i]/m)
		}
	}
	return clamp01(js)
}

// TVD returns the total variation distance ½·Σ|qᵢ−pᵢ| between the
// unsmoothed bin shares: the share of values that would have to change bin
// to turn one distribution into the other (0.15 for 30/50/20% → 45/40/15%).
func (b Bins) TVD() float64 {
	p, q := shares(b.Ref, 0), shares(b.Cur, 0)
	var d float64
	for i := range p {
		d += math.Abs(q[i] - p[i])
	}
	return clamp01(d / 2)
}

// Hellinger returns the Hellinger distance (in [0,1]) between the
// unsmoothed bin shares.
func (b Bins) Hellinger() float64 {
	p, q := shares(b.Ref, 0), shares(b.Cur, 0)
	var bc float64
	for i := range p {
		bc += math.Sqrt(p[i] * q[i])
	}
	return math.Sqrt(clamp01(1 - bc))
}

// PSIThreshold returns the PSI that identical distributions exceed with
// probability alpha: χ²₁₋α(K−1)·(1/n+1/m) for K bins and sample sizes n, m
// (PSI is asymptotically (1/n+1/m)·χ²(K−1) under no drift).
func PSIThreshold(k int, n, m, alpha float64) float64 {
	if k < 2 || !(n > 0) || !(m > 0) {
		return 0
	}
	return ChiSquareQuantile(1-alpha, float64(k-1)) * (1/n + 1/m)
}
