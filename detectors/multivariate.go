package detectors

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/driftmon/driftmon/sketch"
)

// Multivariate drift: PCA reconstruction error, from the profiles' joint
// sketches (sketch.Joint).
//
// The reference's correlation matrix gives principal components; the first ones,
// explaining MultivariateVariance of the variance, are kept. A row's
// reconstruction error is its squared distance (in standard deviations) from
// the space they span, i.e. the sum of its squared coordinates along the
// discarded components. Its mean over a window, with each feature standardised
// by the window's own mean and standard deviation, is exact from the window's
// co-moments: Σ over discarded components u of uᵀ·C·u, with C the window's
// correlation matrix. A change of the joint distribution that moves no marginal
// (a correlation that flips sign, class regions that rotate) moves rows off the
// reference's components and the mean error with them. Standardising by the
// window's own moments leaves a feature's shift in location or scale to the
// per-feature tests, which name it better: this finding is about how features
// move together, not where each one is.
//
// The components are fitted on one half of the reference's rows and its error is
// measured on the other half (cross-fitting: a fit flatters its own sample, as
// the smallest eigenvalues of a fitted covariance are biased low, and in-sample
// errors gave a 30–50% "drift" on null data with 16 features and 500 rows). The
// test compares the window's mean error with the reference's, t = Δ / SE, where
// SE is the delete-a-part jackknife over the joint sketches' 16 parts on both
// sides, refitting as parts are left out (no assumption about the data's
// distribution, which the moments alone would need and heavy-tailed features
// break; batch means that ignored the fits' own noise gave p < 0.05 in 9.5% of
// null trials), with Welch's degrees of freedom. Its two-sided p-value joins the Benjamini–Hochberg family of the
// model's features, and its effect size, the relative change
// |error_cur / error_ref − 1|, is judged on its lower bound like the others
// (MinMultivariate).
//
// Why PCA error and not a domain classifier on samples (the other common choice,
// a classifier telling reference rows from window rows): the error's mean is
// exact from mergeable moments, costs O(d²) per row and O(d³) per window, and
// says which components moved; a classifier needs the raw rows, a model fit per
// window and a permutation or held-out test for its p-value, and sees
// non-linear changes (a product of two features flipping sign) that PCA does not.
// That blind spot is documented in bench/README.md.

// FeatureMultivariate is the Feature of the multivariate finding, and
// KindMultivariate its Kind.
const (
	FeatureMultivariate = "(multivariate)"
	KindMultivariate    = "multivariate"
	// DetectorPCAError names the multivariate detector and its effect size.
	DetectorPCAError = "pca_error"
	// DefaultMultivariateVariance is the share of the reference's variance the
	// kept components explain (NannyML's default).
	DefaultMultivariateVariance = 0.65
	// DefaultMinMultivariate is the smallest relative change of the mean
	// reconstruction error that counts as drift: 20%. A correlation of 0.8
	// weakening to 0.76 moves it that much; null data never reaches it
	// (bench/README.md, "Multivariate drift").
	DefaultMinMultivariate = 0.2
)

// Component is one principal component of the reference: its heaviest
// loadings, its variance in the reference and in the window (both in reference
// standard deviations), and whether PCA keeps it.
type Component struct {
	Index                    int
	Loadings                 []Loading
	RefVariance, CurVariance float64
	Kept                     bool
}

// Loading is one feature's weight in a component.
type Loading struct {
	Feature string
	Weight  float64
}

// Label reads like "PC2 (x +0.71, y −0.71)".
func (c Component) Label() string {
	parts := make([]string, len(c.Loadings))
	for i, l := range c.Loadings {
		parts[i] = fmt.Sprintf("%s %+.2f", l.Feature, l.Weight)
	}
	return fmt.Sprintf("PC%d (%s)", c.Index, strings.Join(parts, ", "))
}

// multivariate compares the joint sketches of ref and cur; ok is false when
// the profiles have none (fewer than two numeric fields) or the detector is off.
func multivariate(ref, cur *sketch.Profile, opts Options) (f Finding, ok bool) {
	if opts.MinMultivariate < 0 || cur == nil || cur.Joint == nil {
		return Finding{}, false
	}
	f = Finding{Feature: FeatureMultivariate, Kind: KindMultivariate, Detector: DetectorPCAError,
		Threshold: opts.MinMultivariate, PValue: 1, AdjustedP: 1}
	cj := cur.Joint
	var rj *sketch.Joint
	if ref != nil {
		rj = ref.Joint
	}
	switch {
	case rj == nil:
		f.Verdict, f.Note = InsufficientData, "the reference has no joint sketch (made before driftmon kept one: rebuild it)"
		return f, true
	case !sameSet(rj.Names, cj.Names):
		f.Verdict, f.Note = InsufficientData, fmt.Sprintf("the reference's joint sketch covers %s, the window's %s", strings.Join(rj.Names, ", "), strings.Join(cj.Names, ", "))
		return f, true
	}
	rAll, cAll := rj.Moments(), cj.Moments()
	f.RefRows, f.CurRows = rAll.Count(), cAll.Count()
	if tooFew(&f, rAll.Count(), cAll.Count(), opts) {
		return f, true
	}
	// The features that vary in the reference (a constant one has no direction),
	// by their index in each joint sketch (a baseline may order them otherwise).
	var idx, cidx []int
	for i, name := range rj.Names {
		if v := rAll.Covariance(i, i); v > 0 && !math.IsInf(v, 0) {
			idx = append(idx, i)
			cidx = append(cidx, slices.Index(cj.Names, name))
		}
	}
	d := len(idx)
	if d < 2 {
		f.Verdict, f.Note = InsufficientData, "fewer than two numeric features vary in the reference"
		return f, true
	}
	// corr is the correlation matrix of the rows m describes (a feature constant
	// there correlates with nothing).
	corr := func(m sketch.Moments, ix []int) [][]float64 {
		out := make([][]float64, d)
		for a := range d {
			out[a] = make([]float64, d)
			for b := range d {
				v := m.Covariance(ix[a], ix[b]) / math.Sqrt(m.Covariance(ix[a], ix[a])*m.Covariance(ix[b], ix[b]))
				switch {
				case a == b:
					v = 1
				case math.IsNaN(v) || math.IsInf(v, 0):
					v = 0
				}
				out[a][b] = v
			}
		}
		return out
	}
	// The components kept: enough to explain MultivariateVariance of the
	// reference's variance.
	lambda, _ := symmetricEigen(corr(rAll, idx))
	kept, total, cum := 0, 0.0, 0.0
	for _, l := range lambda {
		total += l
	}
	for kept < d-1 && cum < opts.MultivariateVariance*total {
		cum += lambda[kept]
		kept++
	}
	kept = max(kept, 1)

	// Cross-fitting: components fitted on the reference's even parts measure
	// its odd parts, and the other way round, so the reference's error is not
	// flattered by the fit (see sketch.Joint); the window is measured with both.
	var even, odd []int
	for b := range sketch.JointBuckets {
		if b%2 == 0 {
			even = append(even, b)
		} else {
			odd = append(odd, b)
		}
	}
	groups := [2]sketch.Moments{rj.Moments(even...), rj.Moments(odd...)}
	for _, g := range groups {
		if g.Count() < int64(2*d+2) {
			f.Verdict, f.Note = InsufficientData, fmt.Sprintf("each half of the reference needs %d complete rows for %d features", 2*d+2, d)
			return f, true
		}
	}
	// components fits group h's parts, without part skip (-1: all of them), and
	// returns every component; a fit's discarded ones are those from kept on.
	components := func(h, skip int) [][]float64 {
		g := groups[h]
		if skip >= 0 {
			var parts []int
			for b := h; b < sketch.JointBuckets; b += 2 {
				if b != skip {
					parts = append(parts, b)
				}
			}
			g = rj.Moments(parts...)
		}
		_, vecs := symmetricEigen(corr(g, idx))
		return vecs
	}
	errOf := func(vecs [][]float64, m [][]float64) float64 {
		var e float64
		for _, v := range vecs {
			e += quadratic(v, m)
		}
		return e
	}
	// Each part's correlation matrix and rows.
	refC, curC := make([][][]float64, sketch.JointBuckets), make([][][]float64, sketch.JointBuckets)
	refN, curN := make([]float64, sketch.JointBuckets), make([]float64, sketch.JointBuckets)
	for b := range sketch.JointBuckets {
		if m := rj.Moments(b); m.Count() > 1 {
			refC[b], refN[b] = corr(m, idx), float64(m.Count())
		}
		if m := cj.Moments(b); m.Count() > 1 {
			curC[b], curN[b] = corr(m, cidx), float64(m.Count())
		}
	}
	// estimate is the mean error of the reference's parts, each under the other
	// half's fit, and of the window's parts under both fits, weighing parts by
	// rows and leaving out parts refSkip and curSkip (-1: none).
	estimate := func(fits [2][][]float64, refSkip, curSkip int) (errRef, errCur float64) {
		var wr, wc float64
		for b := range sketch.JointBuckets {
			if refN[b] > 0 && b != refSkip {
				errRef += refN[b] * errOf(fits[1-b%2], refC[b])
				wr += refN[b]
			}
			if curN[b] > 0 && b != curSkip {
				errCur += curN[b] * (errOf(fits[0], curC[b]) + errOf(fits[1], curC[b])) / 2
				wc += curN[b]
			}
		}
		return errRef / wr, errCur / wc
	}
	evenFit := components(0, -1) // also what the explanation shows
	fits := [2][][]float64{evenFit[kept:], components(1, -1)[kept:]}
	errRef, errCur := estimate(fits, -1, -1)
	if !(errRef > 0) {
		f.Verdict, f.Note = InsufficientData, "the reference's features are exactly collinear"
		return f, true
	}
	// The standard error of errCur − errRef by the delete-a-part jackknife, over
	// the reference's parts (refitting the half that loses one, so the fits'
	// own noise counts) and over the window's: no assumption about the data's
	// distribution, which the moments alone would need and heavy tails break.
	jackknife := func(diff func(part int) (float64, bool)) (variance float64, parts int) {
		var ds []float64
		for b := range sketch.JointBuckets {
			if d, ok := diff(b); ok {
				ds = append(ds, d)
			}
		}
		if len(ds) < 2 {
			return 0, len(ds)
		}
		var mean float64
		for _, d := range ds {
			mean += d / float64(len(ds))
		}
		for _, d := range ds {
			variance += (d - mean) * (d - mean)
		}
		k := float64(len(ds))
		return variance * (k - 1) / k, len(ds)
	}
	varRef, kr := jackknife(func(b int) (float64, bool) {
		if refN[b] == 0 {
			return 0, false
		}
		ft := fits
		ft[b%2] = components(b%2, b)[kept:]
		r, c := estimate(ft, b, -1)
		return c - r, true
	})
	varCur, kc := jackknife(func(b int) (float64, bool) {
		if curN[b] == 0 {
			return 0, false
		}
		r, c := estimate(fits, -1, b)
		return c - r, true
	})
	se := math.Sqrt(varRef + varCur)
	// Welch–Satterthwaite degrees of freedom of the two jackknife variances.
	df := float64(max(1, min(kr, kc)-1))
	if varRef+varCur > 0 && kr > 1 && kc > 1 {
		df = (varRef + varCur) * (varRef + varCur) / (varRef*varRef/float64(kr-1) + varCur*varCur/float64(kc-1))
	}

	f.Score = math.Abs(errCur/errRef - 1)
	switch {
	case se > 0:
		f.PValue = StudentTTwoSided(math.Abs(errCur-errRef)/se, df)
	case errCur != errRef:
		f.PValue = 0
	}
	margin := StudentTQuantile(1-opts.FDR/2, df) * se / errRef
	f.Effects = []Effect{{Statistic: DetectorPCAError, Value: f.Score, Lower: max(0, f.Score-margin), Min: opts.MinMultivariate}}
	f.Scores = map[string]float64{
		DetectorPCAError:   f.Score,
		"pca_error_ref":    errRef,
		"pca_error_cur":    errCur,
		"pca_kept":         float64(kept),
		"pca_components":   float64(d),
		"pca_error_stderr": se,
	}
	// The explanation: the even half's components, measured out of sample on the
	// odd half and on the window.
	refOdd, curM := corr(groups[1], idx), corr(cAll, cidx)
	comps := make([]Component, d)
	for c, v := range evenFit {
		comps[c] = Component{Index: c + 1, Kept: c < kept, Loadings: loadings(v, idx, rj.Names),
			RefVariance: quadratic(v, refOdd), CurVariance: quadratic(v, curM)}
	}
	sort.SliceStable(comps, func(a, b int) bool { return logRatio(comps[a]) > logRatio(comps[b]) })
	f.Explanation.Components = comps[:min(3, len(comps))]
	f.Explanation.RefMean, f.Explanation.CurMean = errRef, errCur
	return f, true
}

// quadratic returns vᵀ·m·v.
func quadratic(v []float64, m [][]float64) float64 {
	var s float64
	for a := range v {
		for b := range v {
			s += v[a] * v[b] * m[a][b]
		}
	}
	return s
}

// logRatio is how far a component's variance moved, as |ln(cur/ref)|.
func logRatio(c Component) float64 {
	if !(c.RefVariance > 0) || !(c.CurVariance > 0) {
		return math.Inf(1)
	}
	return math.Abs(math.Log(c.CurVariance / c.RefVariance))
}

// loadings returns the (up to 3) heaviest loadings of component v, with a
// sign convention (the heaviest positive) so labels are stable.
func loadings(v []float64, idx []int, names []string) []Loading {
	order := make([]int, len(v))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return math.Abs(v[order[a]]) > math.Abs(v[order[b]]) })
	sign := 1.0
	if v[order[0]] < 0 {
		sign = -1
	}
	out := make([]Loading, 0, 3)
	for k, i := range order[:min(3, len(order))] {
		if k > 0 && math.Abs(v[i]) < 0.1 {
			break // a negligible weight says nothing
		}
		out = append(out, Loading{Feature: names[idx[i]], Weight: sign * v[i]})
	}
	return out
}

// symmetricEigen returns the eigenvalues of the symmetric matrix a, largest
// first, and the matching unit eigenvectors (vecs[i] belongs to vals[i]), by
// cyclic Jacobi rotations: exact to rounding for the small matrices here.
func symmetricEigen(a [][]float64) (vals []float64, vecs [][]float64) {
	n := len(a)
	m := make([][]float64, n)
	v := make([][]float64, n)
	for i := range n {
		m[i] = slices.Clone(a[i])
		v[i] = make([]float64, n)
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off float64
		for p := range n {
			for q := p + 1; q < n; q++ {
				off += m[p][q] * m[p][q]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := range n {
			for q := p + 1; q < n; q++ {
				if m[p][q] == 0 {
					continue
				}
				theta := (m[q][q] - m[p][p]) / (2 * m[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					mkp, mkq := m[k][p], m[k][q]
					m[k][p], m[k][q] = c*mkp-s*mkq, s*mkp+c*mkq
				}
				for k := range n {
					mpk, mqk := m[p][k], m[q][k]
					m[p][k], m[q][k] = c*mpk-s*mqk, s*mpk+c*mqk
				}
				for k := range n {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return m[order[x]][order[x]] > m[order[y]][order[y]] })
	for _, i := range order {
		vals = append(vals, m[i][i])
		vec := make([]float64, n)
		for k := range n {
			vec[k] = v[k][i]
		}
		vecs = append(vecs, vec)
	}
	return vals, vecs
}

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
