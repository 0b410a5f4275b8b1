package report

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/sketch"
)

// Distribution is a feature's reference and current distribution reduced to a few
// bars for the dashboard. Shares are of the finite (numeric) or non-null
// (categorical) values of each side; Ref shares are null when there is no
// reference yet (warm-up windows).
type Distribution struct {
	Feature string `json:"feature"`
	Kind    string `json:"kind"`
	// Exact is true when each bar is one distinct value (low-cardinality numeric).
	Exact bool  `json:"exact"`
	Bins  []Bin `json:"bins"`
	// RefNullShare and CurNullShare are the shares of values that are null (and
	// for numeric features NaN or ±Inf) among all values.
	RefNullShare num `json:"ref_null_share"`
	CurNullShare num `json:"cur_null_share"`
}

// Bin is one bar. Numeric bins cover (Lo, Hi]; the first also holds everything
// below Hi and the last everything above Lo, so the shares add up to 1.
type Bin struct {
	Label string `json:"label"`
	Lo    *num   `json:"lo,omitempty"`
	Hi    *num   `json:"hi,omitempty"`
	Ref   *num   `json:"ref"`
	Cur   num    `json:"cur"`
}

const (
	// distBins is the number of bars of a numeric distribution.
	distBins = 20
	// maxExactBars is the most distinct values shown one bar each.
	maxExactBars = 30
	// maxCategoryBars is the most categories shown; the rest share one bar.
	maxCategoryBars = 12
	// otherLabel names the bar of the categories not shown.
	otherLabel = "(other)"
)

// Distributions reduces every feature of cur (and the same feature of ref, which
// may be nil) to a Distribution. It reads the sketches, so it must run on their
// owner's goroutine.
func Distributions(ref, cur *sketch.Profile) []Distribution {
	if cur == nil {
		return []Distribution{}
	}
	out := make([]Distribution, 0, len(cur.Features))
	for _, cf := range cur.Features {
		var rf *sketch.Feature
		if ref != nil {
			if f := ref.Feature(cf.Name); f != nil && f.Kind == cf.Kind {
				rf = f
			}
		}
		d := Distribution{Feature: cf.Name, Kind: cf.Kind.String(), Bins: []Bin{}}
		d.CurNullShare = nullShare(cf)
		d.RefNullShare = num(math.NaN())
		if rf != nil {
			d.RefNullShare = nullShare(rf)
		}
		if cf.Cat != nil {
			var rc *sketch.Categorical
			if rf != nil {
				rc = rf.Cat
			}
			d.Bins = categoryBins(rc, cf.Cat, rf != nil)
		} else {
			var rn *sketch.Numeric
			if rf != nil {
				rn = rf.Num
			}
			d.Bins, d.Exact = numericBins(rn, cf.Num)
		}
		out = append(out, d)
	}
	return out
}

func nullShare(f *sketch.Feature) num {
	total := f.Total()
	if total == 0 {
		return 0
	}
	if f.Cat != nil {
		return num(float64(f.Cat.Nulls()) / float64(total))
	}
	return num(float64(total-f.Num.Count()) / float64(total))
}

// numericBins returns one bar per value when both sides keep exact counts of few
// values, else distBins equal-width bins over [min of the p1s, max of the p99s]
// with shares from CDF differences. ref may be nil.
func numericBins(ref, cur *sketch.Numeric) ([]Bin, bool) {
	sides := []*sketch.Numeric{cur}
	if ref != nil {
		sides = append(sides, ref)
	}
	if bins, ok := exactBins(ref, cur); ok {
		return bins, true
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, n := range sides {
		if n.Count() == 0 {
			continue
		}
		lo = math.Min(lo, n.Quantile(0.01))
		hi = math.Max(hi, n.Quantile(0.99))
	}
	if lo > hi { // no finite values on either side
		return []Bin{}, false
	}
	if lo == hi {
		for _, n := range sides {
			if n.Count() > 0 {
				lo, hi = math.Min(lo, n.Min()), math.Max(hi, n.Max())
			}
		}
	}
	k := distBins
	if lo == hi {
		k = 1
	}
	edges := make([]float64, k+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/float64(k)
	}
	edges[k] = hi
	share := func(n *sketch.Numeric, i int) num {
		if n.Count() == 0 {
			return 0
		}
		below := n.CDF(edges[i])
		if i == 0 {
			below = 0
		}
		above := n.CDF(edges[i+1])
		if i == k-1 {
			above = 1
		}
		return num(max(0, above-below))
	}
	bins := make([]Bin, k)
	for i := range bins {
		l, h := num(edges[i]), num(edges[i+1])
		bins[i] = Bin{Label: detectors.Compact(edges[i]) + "–" + detectors.Compact(edges[i+1]), Lo: &l, Hi: &h, Cur: share(cur, i)}
		if ref != nil {
			r := share(ref, i)
			bins[i].Ref = &r
		}
	}
	return bins, false
}

// exactBins returns one bar per distinct value when every side keeps exact counts
// and together they have at most maxExactBars values.
func exactBins(ref, cur *sketch.Numeric) ([]Bin, bool) {
	cv, cc, ok := cur.Exact()
	if !ok {
		return nil, false
	}
	var rv []float64
	var rc []int64
	if ref != nil {
		if rv, rc, ok = ref.Exact(); !ok {
			return nil, false
		}
	}
	values := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(cv), rv...))))
	if len(values) > maxExactBars || len(values) == 0 {
		return nil, false
	}
	shares := func(vs []float64, cs []int64, total int64) map[float64]float64 {
		m := make(map[float64]float64, len(vs))
		for i, v := range vs {
			m[v] = float64(cs[i]) / float64(total)
		}
		return m
	}
	curShare := shares(cv, cc, cur.Count())
	var refShare map[float64]float64
	if ref != nil {
		refShare = shares(rv, rc, ref.Count())
	}
	bins := make([]Bin, len(values))
	for i, v := range values {
		x := num(v)
		bins[i] = Bin{Label: strconv.FormatFloat(v, 'g', 6, 64), Lo: &x, Hi: &x, Cur: num(curShare[v])}
		if ref != nil {
			r := num(refShare[v])
			bins[i].Ref = &r
		}
	}
	return bins, true
}

// categoryBins returns the maxCategoryBars categories with the largest share on
// either side, then one bar for the rest. hasRef says whether ref shares exist.
func categoryBins(ref, cur *sketch.Categorical, hasRef bool) []Bin {
	type cat struct {
		label    string
		ref, cur float64
	}
	byLabel := map[string]*cat{}
	var cats []*cat
	add := func(c *sketch.Categorical, isRef bool) {
		if c == nil || c.Count() == 0 {
			return
		}
		for _, cc := range c.Counts() {
			x := byLabel[cc.Value]
			if x == nil {
				x = &cat{label: cc.Value}
				byLabel[cc.Value] = x
				cats = append(cats, x)
			}
			share := float64(cc.Count) / float64(c.Count())
			if isRef {
				x.ref = share
			} else {
				x.cur = share
			}
		}
	}
	add(cur, false)
	add(ref, true)
	slices.SortFunc(cats, func(a, b *cat) int {
		if c := cmp.Compare(max(b.ref, b.cur), max(a.ref, a.cur)); c != 0 {
			return c
		}
		return cmp.Compare(a.label, b.label)
	})
	shown := cats[:min(len(cats), maxCategoryBars)]
	bins := make([]Bin, 0, len(shown)+1)
	var refSum, curSum float64
	for _, c := range shown {
		refSum += c.ref
		curSum += c.cur
		b := Bin{Label: c.label, Cur: num(c.cur)}
		if hasRef {
			r := num(c.ref)
			b.Ref = &r
		}
		bins = append(bins, b)
	}
	// The rest: categories not shown plus each side's Other bucket.
	restCur := 0.0
	if cur != nil && cur.Count() > 0 {
		restCur = max(0, 1-curSum)
	}
	restRef := 0.0
	if ref != nil && ref.Count() > 0 {
		restRef = max(0, 1-refSum)
	}
	if restCur > 1e-9 || restRef > 1e-9 {
		b := Bin{Label: otherLabel, Cur: num(restCur)}
		if hasRef {
			r := num(restRef)
			b.Ref = &r
		}
		bins = append(bins, b)
	}
	return bins
}
