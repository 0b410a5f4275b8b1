package sketch

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// DefaultJointFeatures is how many numeric fields the joint sketch covers by
// default: the first 16 in profile order. Its co-moments grow with the square
// of the number: 16 parts × (16 means + 136 co-moments) = 19 KiB encoded.
const DefaultJointFeatures = 16

// JointBuckets is how many parts the joint sketch splits its rows into, by a
// hash of each row's values.
const JointBuckets = 16

// Joint summarises the joint distribution of a profile's numeric fields (up to
// Options.JointFeatures of them), for detectors that see what no single feature
// shows, such as a correlation that changes sign while every marginal stays put.
//
// It keeps, over the rows whose values are all finite, the count, the means and
// the co-moments Σ(xᵢ−x̄ᵢ)(xⱼ−x̄ⱼ), merged with Chan's formula, so the
// covariance matrix of a merged window is exact. It keeps them for
// JointBuckets parts of the rows, chosen by a hash of each row's values, which
// is what a detector needs beyond the covariance matrix, without any assumption
// about the data's distribution: fitting on some parts and measuring on the
// others (what is fitted on a sample flatters that sample: the smallest
// eigenvalues of a fitted covariance are biased low), and the spread of a
// statistic from part to part (batch means), for its standard error. A row's
// part depends only on its values, so the parts, like the moments, are the same
// whatever the batching and the merge order.
type Joint struct {
	// Names are the fields covered, in profile order.
	Names []string
	cols  []int // profile feature index of each name

	parts [JointBuckets]moments
}

// jointScratch holds the column values of one update. It is pooled rather than
// kept in each Joint: every open window has a profile, and a batch's worth of
// values per profile would outweigh the sketch itself.
var jointScratch = sync.Pool{New: func() any { return new([]float64) }}

// Moments are the count, means and co-moments of a set of rows.
type Moments struct {
	moments
}

// moments are the count, means and co-moments (packed upper triangle,
// row-major: (i, j≥i)) of a set of rows.
type moments struct {
	n    int64
	mean []float64
	co   []float64
}

func newMoments(d int) moments {
	return moments{mean: make([]float64, d), co: make([]float64, d*(d+1)/2)}
}

// Count returns the number of rows.
func (m Moments) Count() int64 { return m.n }

// Mean returns the mean of field i.
func (m Moments) Mean(i int) float64 { return m.mean[i] }

// Covariance returns the population covariance of fields i and k (0 without
// rows).
func (m Moments) Covariance(i, k int) float64 {
	if m.n == 0 {
		return 0
	}
	if k < i {
		i, k = k, i
	}
	return m.co[packed(len(m.mean), i, k)] / float64(m.n)
}

// merge adds o into m (Chan's formula).
func (m *moments) merge(o *moments) {
	if o.n == 0 {
		return
	}
	n := m.n + o.n
	scale := float64(m.n) * float64(o.n) / float64(n)
	d := len(m.mean)
	p := 0
	for i := range d {
		di := o.mean[i] - m.mean[i]
		for k := i; k < d; k++ {
			m.co[p] += o.co[p] + scale*di*(o.mean[k]-m.mean[k])
			p++
		}
	}
	w := float64(o.n) / float64(n)
	for i := range d {
		m.mean[i] += w * (o.mean[i] - m.mean[i])
	}
	m.n = n
}

func (m *moments) clone() moments {
	return moments{n: m.n, mean: slices.Clone(m.mean), co: slices.Clone(m.co)}
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
	for b := range j.parts {
		j.parts[b] = newMoments(len(j.Names))
	}
	return &j
}

// Count returns the number of rows whose covered values were all finite.
func (j *Joint) Count() int64 {
	var n int64
	for b := range j.parts {
		n += j.parts[b].n
	}
	return n
}

// Moments returns the moments of the rows of the given parts (0 to
// JointBuckets−1), or of all rows when none are given.
func (j *Joint) Moments(parts ...int) Moments {
	m := newMoments(len(j.Names))
	if len(parts) == 0 {
		for b := range j.parts {
			m.merge(&j.parts[b])
		}
	}
	for _, b := range parts {
		m.merge(&j.parts[b])
	}
	return Moments{m}
}

func packed(d, i, k int) int { return i*d - i*(i-1)/2 + (k - i) }

// update adds the rows idx of rec; cols maps profile features to rec's columns
// (-1: missing, every row null).
func (j *Joint) update(rec arrow.Record, idx []int, cols []int) {
	d, n := len(j.Names), len(idx)
	for _, fi := range j.cols {
		if cols[fi] < 0 {
			return // a missing column: no row is complete
		}
	}
	buf := jointScratch.Get().(*[]float64)
	defer jointScratch.Put(buf)
	vals := (*buf)[:0]
	for _, fi := range j.cols {
		var ok bool
		if vals, ok = appendFloats(vals, rec.Column(cols[fi]), idx); !ok {
			*buf = vals
			return
		}
	}
	// Per part, this batch's rows as sums about a shift (the part's first row in
	// the batch, so large means do not cancel): count, shift, Σy, Σyyᵀ packed.
	// They join the part's moments by Chan's formula once per batch, which costs a
	// few multiply-adds per row instead of a division and two passes.
	p := d * (d + 1) / 2
	stride := 1 + 2*d + p
	vals = append(vals, make([]float64, 2*d+JointBuckets*stride)...)
	*buf = vals
	row, y := vals[d*n:d*n+d], vals[d*n+d:d*n+2*d]
	acc := vals[d*n+2*d:]
	for r := range n {
		complete := true
		for c := range d {
			x := vals[c*n+r]
			if x-x != 0 {
				complete = false
				break
			}
			row[c] = x + 0 // -0 → +0, so equal rows hash alike
		}
		if !complete {
			continue
		}
		a := acc[int(hashRow(row)%JointBuckets)*stride:][:stride]
		shift, sum, cross := a[1:1+d], a[1+d:1+2*d], a[1+2*d:]
		if a[0] == 0 {
			copy(shift, row)
		}
		a[0]++
		for i := range d {
			y[i] = row[i] - shift[i]
			sum[i] += y[i]
		}
		k := 0
		for i, yi := range y {
			for _, ym := range y[i:] {
				cross[k] += yi * ym
				k++
			}
		}
	}
	for b := range JointBuckets {
		a := acc[b*stride:][:stride]
		if a[0] == 0 {
			continue
		}
		cnt := a[0]
		shift, sum, cross := a[1:1+d], a[1+d:1+2*d], a[1+2*d:]
		k := 0
		for i := range d { // co-moments about the batch mean, in place
			for m := i; m < d; m++ {
				cross[k] -= sum[i] * sum[m] / cnt
				k++
			}
		}
		for i := range d {
			shift[i] += sum[i] / cnt // now the batch mean
		}
		j.parts[b].merge(&moments{n: int64(cnt), mean: shift, co: cross})
	}
}

// hashRow mixes the bits of the values into a hash that chooses a row's part:
// one multiply per value, then the splitmix64 finaliser.
func hashRow(x []float64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range x {
		h = (h ^ math.Float64bits(v)) * 0x100000001b3
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// merge adds o (covering the same fields) into j.
func (j *Joint) merge(o *Joint) error {
	if !slices.Equal(j.Names, o.Names) {
		return fmt.Errorf("joint sketches cover %v and %v", j.Names, o.Names)
	}
	for b := range j.parts {
		j.parts[b].merge(&o.parts[b])
	}
	return nil
}

// reset empties j, keeping the fields it covers.
func (j *Joint) reset() {
	for b := range j.parts {
		j.parts[b].n = 0
		clear(j.parts[b].mean)
		clear(j.parts[b].co)
	}
}

func (j *Joint) clone() *Joint {
	if j == nil {
		return nil
	}
	c := &Joint{Names: slices.Clone(j.Names), cols: slices.Clone(j.cols)}
	for b := range j.parts {
		c.parts[b] = j.parts[b].clone()
	}
	return c
}

// appendFloats appends the values of col at rows idx as float64 (nulls as NaN);
// false when the column's type is not numeric.
func appendFloats(dst []float64, col arrow.Array, idx []int) ([]float64, bool) {
	nulls := col.NullN() > 0
	switch c := col.(type) {
	case *array.Float64:
		return appendValues(dst, c.Float64Values(), col, idx, nulls), true
	case *array.Float32:
		return appendValues(dst, c.Float32Values(), col, idx, nulls), true
	case *array.Int64:
		return appendValues(dst, c.Int64Values(), col, idx, nulls), true
	case *array.Int32:
		return appendValues(dst, c.Int32Values(), col, idx, nulls), true
	case *array.Int16:
		return appendValues(dst, c.Int16Values(), col, idx, nulls), true
	case *array.Int8:
		return appendValues(dst, c.Int8Values(), col, idx, nulls), true
	case *array.Uint64:
		return appendValues(dst, c.Uint64Values(), col, idx, nulls), true
	case *array.Uint32:
		return appendValues(dst, c.Uint32Values(), col, idx, nulls), true
	case *array.Uint16:
		return appendValues(dst, c.Uint16Values(), col, idx, nulls), true
	case *array.Uint8:
		return appendValues(dst, c.Uint8Values(), col, idx, nulls), true
	case *array.Boolean:
		for _, r := range idx {
			switch {
			case nulls && c.IsNull(r):
				dst = append(dst, math.NaN())
			case c.Value(r):
				dst = append(dst, 1)
			default:
				dst = append(dst, 0)
			}
		}
		return dst, true
	}
	return dst, false
}

// appendValues appends v at rows idx as float64, NaN where col is null.
func appendValues[T number](dst []float64, v []T, col arrow.Array, idx []int, nulls bool) []float64 {
	for _, r := range idx {
		if nulls && col.IsNull(r) {
			dst = append(dst, math.NaN())
			continue
		}
		dst = append(dst, float64(v[r]))
	}
	return dst
}
