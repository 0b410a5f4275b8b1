package sketch

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// DefaultJointFeatures is how many numeric fields the joint sketch covers by
// default: the first 16 in profile order. Its co-moments grow with the square
// of the number (136 for 16), its sample with the number.
const DefaultJointFeatures = 16

// DefaultJointSample is the number of distinct rows the joint sketch samples.
const DefaultJointSample = 256

// Joint summarises the joint distribution of a profile's numeric fields (up to
// Options.JointFeatures of them), for detectors that see what no single feature
// shows, such as a correlation that changes sign while every marginal stays put.
//
// It keeps, over the rows whose values are all finite, the count, the means and
// the co-moments Σ(xᵢ−x̄ᵢ)(xⱼ−x̄ⱼ) (merged with Chan's formula, so a covariance
// matrix of a merged window is exact), plus a bottom-k sample: the k distinct
// value rows with the smallest hashes, each with its count. A bottom-k sample is
// the same whatever the batching and the merge order (a row is in it exactly
// when its hash is among the k smallest of all rows seen), so restarts and merges
// give the same sample; weighting by counts makes it a sample of rows, not of
// distinct values. Detectors use it for what moments cannot give, such as the
// spread of a per-row statistic.
type Joint struct {
	// Names are the fields covered, in profile order.
	Names []string
	cols  []int // profile feature index of each name

	n    int64
	mean []float64
	co   []float64 // packed upper triangle, row-major: (i, j≥i)

	k      int
	sample []jointRow // heap by hash (largest on top) while updating

	// scratch
	vals [][]float64
	row  []float64
}

type jointRow struct {
	hash  uint64
	count int64
	x     []float64
}

func newJoint(fields []*Feature, opts Options) *Joint {
	var j Joint
	for i, f := range fields {
		if f.Num != nil && len(j.Names) < opts.JointFeatures {
			j.Names = append(j.Names, f.Name)
			j.cols = append(j.cols, i)
		}
	}
	if len(j.Names) < 2 {
		return nil
	}
	d := len(j.Names)
	j.mean = make([]float64, d)
	j.co = make([]float64, d*(d+1)/2)
	j.k = opts.JointSample
	return &j
}

// Count returns the number of rows whose covered values were all finite.
func (j *Joint) Count() int64 { return j.n }

// Mean returns the mean of field i over the counted rows.
func (j *Joint) Mean(i int) float64 { return j.mean[i] }

// Covariance returns the population covariance of fields i and k over the
// counted rows (0 when there are none).
func (j *Joint) Covariance(i, k int) float64 {
	if j.n == 0 {
		return 0
	}
	if k < i {
		i, k = k, i
	}
	return j.co[packed(len(j.Names), i, k)] / float64(j.n)
}

// Sample calls fn for each sampled row (values in Names order) with its count,
// in hash order. fn must not keep x.
func (j *Joint) Sample(fn func(x []float64, count int64)) {
	for _, r := range j.sorted() {
		fn(r.x, r.count)
	}
}

func packed(d, i, k int) int { return i*d - i*(i-1)/2 + (k - i) }

// update adds the rows idx of rec; cols maps profile features to rec's columns
// (-1: missing, every row null).
func (j *Joint) update(rec arrow.Record, idx []int, cols []int) {
	d := len(j.Names)
	if len(j.vals) != d {
		j.vals = make([][]float64, d)
		j.row = make([]float64, d)
	}
	for c, fi := range j.cols {
		if cols[fi] < 0 {
			return // a missing column: no row is complete
		}
		buf := j.vals[c][:0]
		if cap(buf) < len(idx) {
			buf = make([]float64, 0, len(idx))
		}
		var ok bool
		if buf, ok = appendFloats(buf, rec.Column(cols[fi]), idx); !ok {
			return
		}
		j.vals[c] = buf
	}
	for r := range idx {
		complete := true
		for c := range d {
			x := j.vals[c][r]
			if x-x != 0 {
				complete = false
				break
			}
			j.row[c] = x + 0 // -0 → +0, so equal rows hash alike
		}
		if complete {
			j.add(j.row, 1)
		}
	}
}

// add counts one row of values (count times) in the moments and the sample.
func (j *Joint) add(x []float64, count int64) {
	d := len(x)
	j.n += count
	w := float64(count) / float64(j.n)
	// Chan's update with a batch of count identical rows: δ = x − mean.
	scale := float64(count) * float64(j.n-count) / float64(j.n)
	p := 0
	for i := range d {
		di := x[i] - j.mean[i]
		for k := i; k < d; k++ {
			j.co[p] += scale * di * (x[k] - j.mean[k])
			p++
		}
	}
	for i := range d {
		j.mean[i] += w * (x[i] - j.mean[i])
	}
	j.offer(hashRow(x), count, x)
}

// offer puts a row into the bottom-k sample if its hash is small enough.
func (j *Joint) offer(h uint64, count int64, x []float64) {
	if len(j.sample) == j.k && h > j.sample[0].hash {
		return // the common case once the sample is full
	}
	for i := range j.sample {
		if j.sample[i].hash == h && slices.Equal(j.sample[i].x, x) {
			j.sample[i].count += count
			return
		}
	}
	if len(j.sample) < j.k {
		j.sample = append(j.sample, jointRow{h, count, slices.Clone(x)})
		j.up(len(j.sample) - 1)
		return
	}
	if h >= j.sample[0].hash {
		return
	}
	top := &j.sample[0]
	top.hash, top.count = h, count
	copy(top.x, x)
	j.down(0)
}

// up and down keep j.sample a max-heap on (hash, values).
func (j *Joint) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if rowCmp(j.sample[i], j.sample[parent]) <= 0 {
			return
		}
		j.sample[i], j.sample[parent] = j.sample[parent], j.sample[i]
		i = parent
	}
}

func (j *Joint) down(i int) {
	n := len(j.sample)
	for {
		big := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < n && rowCmp(j.sample[c], j.sample[big]) > 0 {
				big = c
			}
		}
		if big == i {
			return
		}
		j.sample[i], j.sample[big] = j.sample[big], j.sample[i]
		i = big
	}
}

func rowCmp(a, b jointRow) int {
	if c := cmp.Compare(a.hash, b.hash); c != 0 {
		return c
	}
	return slices.Compare(a.x, b.x)
}

// sorted returns the sample in ascending (hash, values) order.
func (j *Joint) sorted() []jointRow {
	s := slices.Clone(j.sample)
	slices.SortFunc(s, rowCmp)
	return s
}

// hashRow mixes the bits of the values (splitmix64 finaliser per value).
func hashRow(x []float64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range x {
		h ^= math.Float64bits(v)
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// merge adds o (covering the same fields) into j.
func (j *Joint) merge(o *Joint) error {
	if o == nil {
		return nil
	}
	if !slices.Equal(j.Names, o.Names) {
		return fmt.Errorf("joint sketches cover %v and %v", j.Names, o.Names)
	}
	if o.n > 0 {
		n := j.n + o.n
		d := len(j.Names)
		delta := make([]float64, d)
		for i := range d {
			delta[i] = o.mean[i] - j.mean[i]
		}
		scale := float64(j.n) * float64(o.n) / float64(n)
		p := 0
		for i := range d {
			for k := i; k < d; k++ {
				j.co[p] += o.co[p] + scale*delta[i]*delta[k]
				p++
			}
		}
		w := float64(o.n) / float64(n)
		for i := range d {
			j.mean[i] += w * delta[i]
		}
		j.n = n
	}
	for _, r := range o.sorted() {
		j.offer(r.hash, r.count, r.x)
	}
	return nil
}

// reset empties j, keeping the fields it covers.
func (j *Joint) reset() {
	j.n = 0
	clear(j.mean)
	clear(j.co)
	j.sample = j.sample[:0]
}

func (j *Joint) clone() *Joint {
	if j == nil {
		return nil
	}
	c := &Joint{Names: slices.Clone(j.Names), cols: slices.Clone(j.cols), n: j.n,
		mean: slices.Clone(j.mean), co: slices.Clone(j.co), k: j.k}
	c.sample = make([]jointRow, len(j.sample))
	for i, r := range j.sample {
		c.sample[i] = jointRow{r.hash, r.count, slices.Clone(r.x)}
	}
	return c
}

// appendFloats appends the values of col at rows idx as float64 (nulls as NaN);
// false when the column's type is not numeric.
func appendFloats(dst []float64, col arrow.Array, idx []int) ([]float64, bool) {
	nulls := col.NullN() > 0
	get := func(get func(int) float64) []float64 {
		for _, r := range idx {
			if nulls && col.IsNull(r) {
				dst = append(dst, math.NaN())
			} else {
				dst = append(dst, get(r))
			}
		}
		return dst
	}
	switch c := col.(type) {
	case *array.Float64:
		v := c.Float64Values()
		return get(func(r int) float64 { return v[r] }), true
	case *array.Float32:
		v := c.Float32Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Int64:
		v := c.Int64Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Int32:
		v := c.Int32Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Int16:
		v := c.Int16Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Int8:
		v := c.Int8Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Uint64:
		v := c.Uint64Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Uint32:
		v := c.Uint32Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Uint16:
		v := c.Uint16Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Uint8:
		v := c.Uint8Values()
		return get(func(r int) float64 { return float64(v[r]) }), true
	case *array.Boolean:
		return get(func(r int) float64 {
			if c.Value(r) {
				return 1
			}
			return 0
		}), true
	}
	return dst, false
}
