package detectors

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/sketch"
)

// column is one generated feature column: numeric values or categories.
// A category "\x00null" is a null; valid, when set, marks the numeric
// values that are not null.
type column struct {
	name  string
	num   []float64
	valid []bool
	cat   []string
}

// profileOf builds a profile from columns through Arrow records, the way
// production code feeds it, in batches of batch rows.
func profileOf(t testing.TB, cols []column, opts sketch.Options, batch int) *sketch.Profile {
	t.Helper()
	fields := make([]sketch.Field, len(cols))
	afields := make([]arrow.Field, len(cols))
	n := 0
	for i, c := range cols {
		if c.cat != nil {
			fields[i] = sketch.Field{Name: c.name, Kind: sketch.KindCategorical}
			afields[i] = arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true}
			n = len(c.cat)
		} else {
			fields[i] = sketch.Field{Name: c.name, Kind: sketch.KindNumeric}
			afields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
			n = len(c.num)
		}
	}
	p := sketch.NewProfile(fields, opts)
	schema := arrow.NewSchema(afields, nil)
	mem := memory.NewGoAllocator()
	if batch <= 0 {
		batch = n
	}
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		b := array.NewRecordBuilder(mem, schema)
		for i, c := range cols {
			if c.cat != nil {
				fb := b.Field(i).(*array.StringBuilder)
				for _, v := range c.cat[lo:hi] {
					if v == "\x00null" {
						fb.AppendNull()
					} else {
						fb.Append(v)
					}
				}
				continue
			}
			var valid []bool
			if c.valid != nil {
				valid = c.valid[lo:hi]
			}
			b.Field(i).(*array.Float64Builder).AppendValues(c.num[lo:hi], valid)
		}
		rec := b.NewRecord()
		p.Update(rec, nil)
		rec.Release()
		b.Release()
	}
	return p
}

func numProfile(t testing.TB, vals []float64) *sketch.Profile {
	t.Helper()
	return profileOf(t, []column{{name: "x", num: vals}}, sketch.Options{}, 0)
}

// exactKS is the two-sample KS statistic on raw samples.
func exactKS(a, b []float64) float64 {
	return exactKSSorted(sorted(a), sorted(b))
}

func sorted(a []float64) []float64 {
	a = slices.Clone(a)
	slices.Sort(a)
	return a
}

// exactKSSorted is exactKS of two ascending samples.
func exactKSSorted(a, b []float64) float64 {
	n, m := float64(len(a)), float64(len(b))
	var i, j int
	var d float64
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/n-float64(j)/m))
	}
	return d
}

// exactPSI is PSI on raw samples with bins at the exact reference deciles
// (type-1 quantiles, right-closed bins) and the same smoothing as PSI.
func exactPSI(ref, cur []float64, nbins int) float64 {
	return exactPSISorted(sorted(ref), cur, nbins)
}

// exactPSISorted is exactPSI with the reference sample sorted.
func exactPSISorted(s, cur []float64, nbins int) float64 {
	var edges []float64
	for i := 1; i < nbins; i++ {
		k := int(math.Ceil(float64(i)/float64(nbins)*float64(len(s)))) - 1
		edges = append(edges, s[k])
	}
	edges = slices.Compact(edges)
	count := func(xs []float64) []float64 {
		out := make([]float64, len(edges)+1)
		for _, x := range xs {
			k, _ := slices.BinarySearch(edges, x) // first edge ≥ x → bin (e[k-1], e[k]]
			out[k]++
		}
		return out
	}
	b := Bins{Labels: make([]string, len(edges)+1), Ref: count(s), Cur: count(cur)}
	psi, _ := b.PSI()
	return psi
}

func normals(r *rand.Rand, n int, mu, sigma float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = mu + sigma*r.NormFloat64()
	}
	return out
}

func lognormals(r *rand.Rand, n int, mu, sigma float64) []float64 {
	out := normals(r, n, mu, sigma)
	for i, v := range out {
		out[i] = math.Exp(v)
	}
	return out
}

func ints(r *rand.Rand, n, k int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(r.IntN(k))
	}
	return out
}

func cats(r *rand.Rand, n int, weights []float64) []string {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	var total float64
	for _, w := range weights {
		total += w
	}
	out := make([]string, n)
	for i := range out {
		u := r.Float64() * total
		k := 0
		for k < len(weights)-1 && u >= weights[k] {
			u -= weights[k]
			k++
		}
		out[i] = names[k]
	}
	return out
}

// roundedLognormals are integers round(100·e^X), X ~ N(mu, 1): an integer
// feature with thousands of distinct values and many ties, which the
// sketch keeps in a digest.
func roundedLognormals(r *rand.Rand, n int, mu float64) []float64 {
	out := lognormals(r, n, mu, 1)
	for i, v := range out {
		out[i] = math.Round(100 * v)
	}
	return out
}

// roundedNormals are integers round(10 + 3X), X ~ N(mu, 1): about 25
// distinct values, kept as exact counts.
func roundedNormals(r *rand.Rand, n int, mu float64) []float64 {
	out := normals(r, n, 10+3*mu, 3)
	for i, v := range out {
		out[i] = math.Round(v)
	}
	return out
}

// zipf draws n categories "v0", "v1", … with P(vk) ∝ 1/(k+1)^s over k
// categories: a long tail, so new categories turn up in every window.
func zipf(r *rand.Rand, n, k int, s float64) []string {
	names := make([]string, k)
	cdf := make([]float64, k)
	var total float64
	for i := range names {
		names[i] = "v" + strconv.Itoa(i)
		total += math.Pow(float64(i+1), -s)
		cdf[i] = total
	}
	out := make([]string, n)
	for i := range out {
		j, _ := slices.BinarySearch(cdf, r.Float64()*total)
		out[i] = names[min(j, k-1)]
	}
	return out
}

// withNulls turns a share of c's values into nulls (NaN payloads are left
// alone for numeric columns; categories become "\x00null").
func withNulls(r *rand.Rand, c column, share float64) column {
	if c.cat != nil {
		c.cat = slices.Clone(c.cat)
		for i := range c.cat {
			if r.Float64() < share {
				c.cat[i] = "\x00null"
			}
		}
		return c
	}
	c.valid = make([]bool, len(c.num))
	for i := range c.valid {
		c.valid[i] = r.Float64() >= share
	}
	return c
}

// withNaNs replaces a share of c's numeric values by NaN.
func withNaNs(r *rand.Rand, c column, share float64) column {
	c.num = slices.Clone(c.num)
	for i := range c.num {
		if r.Float64() < share {
			c.num[i] = math.NaN()
		}
	}
	return c
}
