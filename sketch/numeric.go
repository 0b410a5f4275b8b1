package sketch

import (
	"cmp"
	"math"
	"slices"
	"sort"

	"github.com/influxdata/tdigest"
)

// Numeric summarises the values of one numeric feature in one window.
//
// While the feature has at most MaxExact distinct finite values it keeps
// exact value counts and every statistic is exact; above that it switches to
// a t-digest (compression chosen explicitly). NaN, ±Inf and nulls are counted
// apart and never enter the digest, the moments or min/max.
//
// The digest is influxdata/tdigest's merging t-digest: its centroids
// ([]tdigest.Centroid, sorted by mean) are what Numeric stores, encodes and
// merges, and they are compressed with the same scale function (k1, arcsine)
// and the same rule for when a value joins the current centroid. The
// compression pass itself is ours (see compress): the library sorts its
// buffer through sort.Interface and averages each value into its centroid
// with a division, which cost two thirds of Profile.Update and cannot reach
// the per-core throughput the monitor needs however the library is fed
// (bench/README.md, issue 10). Numeric buffers raw values as sortable keys,
// radix-sorts them, and merges them with the centroids in one pass.
//
// Reads go through a cached, sorted copy of the centroids with our own
// interpolation (exact min/max at the ends, single-value centroids as point
// masses), because influxdata/tdigest's CDF/Quantile mutate the digest,
// ignore point masses and know no exact min/max.
type Numeric struct {
	compression float64
	maxExact    int

	count          int64 // finite values
	nulls, nans    int64
	posInf, negInf int64
	min, max       float64
	mean, m2       float64 // running mean and sum of squared deviations (Chan et al.)

	// exact holds value counts while len(exact) ≤ maxExact; nil afterwards.
	exact map[float64]int64

	// cents is the digest's centroids, sorted by mean; compressed unless
	// dirty.
	cents []tdigest.Centroid
	// pending holds the sort keys (floatKey) of the values added in digest
	// mode since the last compression, in arrival order.
	pending []uint64
	// dirty says that pending or cents must be compressed before cents is
	// read: values are pending, or cents holds uncompressed centroids after
	// a spill or a merge.
	dirty bool
	// spilled says that cents holds the exact counts just moved into the
	// digest (spill): influxdata/tdigest held those in its buffer with the
	// values that followed, so they count toward the next compression, which
	// comes that many values earlier (see full). Decoded and cloned
	// centroids do not count, so that a profile restored from a checkpoint
	// compresses exactly when the original does and stays equal to it.
	spilled bool

	// view is the read cache (knots of the CDF); rebuilt when stale.
	view  cdfView
	stale bool
}

// cdfView is a piecewise-linear CDF with jumps: at knot i the cumulative
// weight jumps from left[i] to right[i]; between knot i and i+1 it rises
// linearly from right[i] to left[i+1]. In exact mode right[i] == left[i+1]
// so the CDF is a step function.
type cdfView struct {
	xs, left, right []float64
	total           float64
}

func newNumeric(opts Options) *Numeric {
	return &Numeric{
		compression: opts.Compression,
		maxExact:    opts.MaxExact,
		min:         math.Inf(1),
		max:         math.Inf(-1),
		exact:       make(map[float64]int64),
		stale:       true,
	}
}

// add records one value; the batch functions of update.go do the same for
// a whole column and are what Profile.Update uses for numbers.
func (n *Numeric) add(x float64) {
	if x-x != 0 { // NaN or ±Inf
		n.addNonFinite(x)
		return
	}
	x += 0 // -0 → +0, so equal values have equal bits
	n.mean, n.m2 = mergeMoments(n.count, n.mean, n.m2, 1, x, 0)
	n.count++
	n.min = min(n.min, x)
	n.max = max(n.max, x)
	n.stale = true
	if n.exact != nil {
		n.exact[x]++
		if len(n.exact) > n.maxExact {
			n.spill()
		}
		return
	}
	n.push(x)
}

// addNonFinite counts a NaN or an infinity.
func (n *Numeric) addNonFinite(x float64) {
	switch {
	case x != x:
		n.nans++
	case x > 0:
		n.posInf++
	default:
		n.negInf++
	}
}

// push queues a finite value (not -0) for the digest.
func (n *Numeric) push(x float64) {
	if len(n.pending) >= n.full() {
		n.grow()
	}
	n.pending = append(n.pending, floatKey(x))
	n.dirty = true
}

// full returns how many pending values fill the buffer: bufferLen, less the
// spilled counts waiting with them (see spilled), and 0 before the buffer
// exists.
func (n *Numeric) full() int {
	if cap(n.pending) == 0 {
		return 0
	}
	if n.spilled {
		return max(1, cap(n.pending)-len(n.cents))
	}
	return cap(n.pending)
}

// grow makes room in the full buffer of pending values: it allocates the
// buffer the first time and compresses it afterwards.
func (n *Numeric) grow() {
	if cap(n.pending) == 0 {
		n.pending = make([]uint64, 0, n.bufferLen())
		return
	}
	n.dirty = true
	n.compress()
}

// bufferLen is how many values are buffered between compressions: as many
// as influxdata/tdigest buffers (it compresses when more than 8 per unit of
// compression are waiting), so that the same values give the same
// centroids. A larger buffer would spread each pass's per-centroid work
// over more values but cost memory in every open feature-window.
func (n *Numeric) bufferLen() int { return 8*int(math.Ceil(n.compression)) + 1 }

// spill moves the exact counts into the digest and drops the map.
func (n *Numeric) spill() {
	n.cents = n.cents[:0]
	for v, c := range n.exact {
		n.cents = append(n.cents, tdigest.Centroid{Mean: v, Weight: float64(c)})
	}
	slices.SortFunc(n.cents, func(a, b tdigest.Centroid) int { return cmp.Compare(a.Mean, b.Mean) })
	n.exact = nil
	n.dirty = true
	n.spilled = true
	n.stale = true
}

// centroids returns the digest's current centroids (digest mode only).
func (n *Numeric) centroids() []tdigest.Centroid {
	n.compress()
	return n.cents
}

// Count returns the number of finite values seen.
func (n *Numeric) Count() int64 { return n.count }

// Nulls returns the number of null values (including rows whose column was
// missing from the record).
func (n *Numeric) Nulls() int64 { return n.nulls }

// NaNs returns the number of NaN values.
func (n *Numeric) NaNs() int64 { return n.nans }

// Infs returns the number of +Inf and -Inf values.
func (n *Numeric) Infs() int64 { return n.posInf + n.negInf }

// PosInfs returns the number of +Inf values.
func (n *Numeric) PosInfs() int64 { return n.posInf }

// NegInfs returns the number of -Inf values.
func (n *Numeric) NegInfs() int64 { return n.negInf }

// Total returns every value seen: finite, NaN, ±Inf and nulls.
func (n *Numeric) Total() int64 { return n.count + n.nulls + n.nans + n.posInf + n.negInf }

// Min returns the exact smallest finite value, or NaN when there is none.
func (n *Numeric) Min() float64 {
	if n.count == 0 {
		return math.NaN()
	}
	return n.min
}

// Max returns the exact largest finite value, or NaN when there is none.
func (n *Numeric) Max() float64 {
	if n.count == 0 {
		return math.NaN()
	}
	return n.max
}

// Mean returns the mean of the finite values, or NaN when there is none.
func (n *Numeric) Mean() float64 {
	if n.count == 0 {
		return math.NaN()
	}
	return n.mean
}

// Variance returns the unbiased sample variance of the finite values
// (0 with fewer than two values).
func (n *Numeric) Variance() float64 {
	if n.count < 2 {
		return 0
	}
	return n.m2 / float64(n.count-1)
}

// Std returns the square root of Variance.
func (n *Numeric) Std() float64 { return math.Sqrt(n.Variance()) }

// IsExact reports whether the feature still keeps exact value counts, in
// which case CDF, Quantile and Points are exact.
func (n *Numeric) IsExact() bool { return n.exact != nil }

// Exact returns the distinct finite values in ascending order with their
// counts; ok is false once the feature has had more than MaxExact distinct
// values.
func (n *Numeric) Exact() (values []float64, counts []int64, ok bool) {
	if n.exact == nil {
		return nil, nil, false
	}
	values = make([]float64, 0, len(n.exact))
	for v := range n.exact {
		values = append(values, v)
	}
	slices.Sort(values)
	counts = make([]int64, len(values))
	for i, v := range values {
		counts[i] = n.exact[v]
	}
	return values, counts, true
}

// Centroids returns a copy of the t-digest centroids (mean, weight) sorted by
// mean; nil in exact mode.
func (n *Numeric) Centroids() []tdigest.Centroid {
	if n.exact != nil {
		return nil
	}
	return slices.Clone(n.centroids())
}

// CDFError returns a bound on how far CDF and CDFBelow can be from the
// share of the values actually seen, as a share: 0 in exact mode, where
// they are exact; in digest mode the largest weight of a centroid that is
// interpolated (not a point mass) divided by 2·Count.
//
// The digest mode bound is a heuristic, not a guarantee: it is the error at
// a centroid's mean when its values fall evenly on both sides of it, and
// the t-digest gives no hard bound. In practice it is loose: at the default
// compression it is about π/(4·Compression) ≈ 0.004 per sketch, while the
// measured error of KS between two sketches of 1e4–1e6 values is
// 0.0001–0.002 (bench/README.md).
func (n *Numeric) CDFError() float64 {
	if n.exact != nil || n.count == 0 {
		return 0
	}
	var w float64
	for _, c := range n.centroids() {
		if c.Weight > 1 && c.Mean > n.min && c.Mean < n.max {
			w = max(w, c.Weight)
		}
	}
	return w / (2 * float64(n.count))
}

// Points returns the sorted distinct points at which the CDF changes shape:
// the exact values in exact mode, else the centroid means plus min and max.
// The KS detector evaluates both profiles' CDFs at the points of both.
func (n *Numeric) Points() []float64 {
	v := n.cdf()
	return slices.Clone(v.xs)
}

// CDF returns the share of finite values ≤ x (0 when there are none).
func (n *Numeric) CDF(x float64) float64 {
	v := n.cdf()
	if v.total == 0 || x != x {
		return 0
	}
	i := sort.SearchFloat64s(v.xs, x) // first xs[i] >= x
	if i < len(v.xs) && v.xs[i] == x {
		return v.right[i] / v.total
	}
	return v.between(i, x) / v.total
}

// CDFBelow returns the share of finite values < x (0 when there are none).
// It differs from CDF only at a point mass.
func (n *Numeric) CDFBelow(x float64) float64 {
	v := n.cdf()
	if v.total == 0 || x != x {
		return 0
	}
	i := sort.SearchFloat64s(v.xs, x)
	if i < len(v.xs) && v.xs[i] == x {
		return v.left[i] / v.total
	}
	return v.between(i, x) / v.total
}

// CDFSorted evaluates the CDF at every point of the ascending slice xs in
// one linear pass: le[i] = CDF(xs[i]) and lt[i] = CDFBelow(xs[i]). le and
// lt must have len(xs) elements. It is the fast path for comparing two
// distributions at the union of their knots.
func (n *Numeric) CDFSorted(xs, le, lt []float64) {
	v := n.cdf()
	if v.total == 0 {
		clear(le[:len(xs)])
		clear(lt[:len(xs)])
		return
	}
	i := 0 // first knot ≥ x
	for k, x := range xs {
		for i < len(v.xs) && v.xs[i] < x {
			i++
		}
		if i < len(v.xs) && v.xs[i] == x {
			le[k], lt[k] = v.right[i]/v.total, v.left[i]/v.total
			continue
		}
		c := v.between(i, x) / v.total
		le[k], lt[k] = c, c
	}
}

// between returns the cumulative weight at x, which lies strictly between
// knot i-1 and knot i.
func (v *cdfView) between(i int, x float64) float64 {
	switch {
	case i == 0:
		return 0
	case i == len(v.xs):
		return v.total
	}
	x0, x1 := v.xs[i-1], v.xs[i]
	y0, y1 := v.right[i-1], v.left[i]
	if y1 == y0 || x1 <= x0 {
		return y0
	}
	return y0 + (y1-y0)*(x-x0)/(x1-x0)
}

// Quantile returns the value at rank q (0 ≤ q ≤ 1) of the finite values: the
// inverse of CDF (for exact counts, the smallest value whose CDF ≥ q). It is
// NaN when there are no finite values or q is out of range.
func (n *Numeric) Quantile(q float64) float64 {
	if n.count == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	if q == 0 {
		return n.min
	}
	if q == 1 {
		return n.max
	}
	v := n.cdf()
	t := q * v.total
	i := sort.Search(len(v.xs), func(i int) bool { return v.right[i] >= t })
	if i == len(v.xs) {
		return n.max
	}
	if v.left[i] <= t || i == 0 {
		return v.xs[i]
	}
	x0, x1 := v.xs[i-1], v.xs[i]
	y0, y1 := v.right[i-1], v.left[i]
	if y1 <= y0 {
		return x1
	}
	return x0 + (x1-x0)*(t-y0)/(y1-y0)
}

// cdf returns the read view, rebuilding it after writes.
func (n *Numeric) cdf() *cdfView {
	if !n.stale {
		return &n.view
	}
	v := &n.view
	v.xs, v.left, v.right = v.xs[:0], v.left[:0], v.right[:0]
	v.total = 0
	n.stale = false
	if n.count == 0 {
		return v
	}
	if n.exact != nil {
		vals := v.xs
		for x := range n.exact {
			vals = append(vals, x)
		}
		slices.Sort(vals)
		v.xs = vals
		var s float64
		for _, x := range vals {
			c := float64(n.exact[x])
			v.left = append(v.left, s)
			s += c
			v.right = append(v.right, s)
		}
		v.total = s
		return v
	}
	cs := n.centroids()
	var total float64
	for _, c := range cs {
		total += c.Weight
	}
	if n.min < cs[0].Mean {
		v.push(n.min, 0, 0)
	}
	var s float64
	for i := 0; i < len(cs); {
		j := i + 1
		w := cs[i].Weight
		for j < len(cs) && cs[j].Mean == cs[i].Mean {
			w += cs[j].Weight
			j++
		}
		m := cs[i].Mean
		// A centroid is a point mass when it holds one value, when several
		// centroids share its mean, or when its mean is the exact min or max
		// (then every value in it equals that extreme).
		if w == 1 || j-i > 1 || m <= n.min || m >= n.max {
			v.push(m, s, s+w)
		} else {
			v.push(m, s+w/2, s+w/2)
		}
		s += w
		i = j
	}
	if n.max > cs[len(cs)-1].Mean {
		v.push(n.max, s, s)
	}
	v.total = total
	return v
}

func (v *cdfView) push(x, l, r float64) {
	if k := len(v.xs) - 1; k >= 0 && v.xs[k] == x {
		v.right[k] = r
		return
	}
	v.xs = append(v.xs, x)
	v.left = append(v.left, l)
	v.right = append(v.right, r)
}

// merge adds o into n. Digests are merged centroid by centroid (never
// AddCentroidList, which lost mass in older versions), feeding a fresh digest
// the union of both centroid lists in a canonical order so that the result
// does not depend on which side is the receiver.
func (n *Numeric) merge(o *Numeric) {
	n.mergeAll([]*Numeric{o})
}

// mergeAll adds every part into n at once, in a canonical order.
func (n *Numeric) mergeAll(parts []*Numeric) {
	for _, o := range parts {
		if o.count > 0 {
			n.mean, n.m2 = mergeMoments(n.count, n.mean, n.m2, o.count, o.mean, o.m2)
			n.count += o.count
			n.min = math.Min(n.min, o.min)
			n.max = math.Max(n.max, o.max)
		}
		n.nulls += o.nulls
		n.nans += o.nans
		n.posInf += o.posInf
		n.negInf += o.negInf
	}
	n.stale = true
	allExact := n.exact != nil
	for _, o := range parts {
		allExact = allExact && o.exact != nil
	}
	if allExact {
		for _, o := range parts {
			for v, c := range o.exact {
				n.exact[v] += c
			}
		}
		if len(n.exact) > n.maxExact {
			n.spill()
		}
		return
	}
	var all []tdigest.Centroid
	appendExact := func(m map[float64]int64) {
		for v, c := range m {
			all = append(all, tdigest.Centroid{Mean: v, Weight: float64(c)})
		}
	}
	if n.exact != nil {
		appendExact(n.exact)
		n.exact = nil
	} else {
		all = append(all, n.centroids()...)
	}
	for _, o := range parts {
		if o.exact != nil {
			appendExact(o.exact)
		} else {
			all = append(all, o.centroids()...)
		}
	}
	slices.SortFunc(all, func(a, b tdigest.Centroid) int {
		if c := cmp.Compare(a.Mean, b.Mean); c != 0 {
			return c
		}
		return cmp.Compare(a.Weight, b.Weight)
	})
	n.cents = all
	n.pending = n.pending[:0]
	n.dirty = true
	n.compress()
}

// mergeMoments combines two (count, mean, M2) triples (Chan et al.).
func mergeMoments(na int64, ma, m2a float64, nb int64, mb, m2b float64) (mean, m2 float64) {
	if na == 0 {
		return mb, m2b
	}
	fa, fb := float64(na), float64(nb)
	n := fa + fb
	d := mb - ma
	mean = ma + d*fb/n
	m2 = m2a + m2b + d*d*fa*fb/n
	return mean, m2
}

// clone returns a deep copy; the copy's digest is rebuilt lazily from the
// centroids on its next write.
func (n *Numeric) clone() *Numeric {
	c := &Numeric{
		compression: n.compression,
		maxExact:    n.maxExact,
		count:       n.count,
		nulls:       n.nulls,
		nans:        n.nans,
		posInf:      n.posInf,
		negInf:      n.negInf,
		min:         n.min,
		max:         n.max,
		mean:        n.mean,
		m2:          n.m2,
		stale:       true,
	}
	if n.exact != nil {
		c.exact = make(map[float64]int64, len(n.exact))
		for v, k := range n.exact {
			c.exact[v] = k
		}
	} else {
		c.cents = slices.Clone(n.centroids())
	}
	return c
}
