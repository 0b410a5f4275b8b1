package detectors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/sketch"
)

// column is one generated feature column: numeric values or categories.
type column struct {
	name string
	num  []float64
	cat  []string
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
			b.Field(i).(*array.Float64Builder).AppendValues(c.num[lo:hi], nil)
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
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
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
	s := slices.Clone(ref)
	slices.Sort(s)
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
	b := Bins{Labels: make([]string, len(edges)+1), Ref: count(ref), Cur: count(cur)}
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
