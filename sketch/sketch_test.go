package sketch

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// record builds a one-column record; build appends the values.
func record[B array.Builder](t testing.TB, mem memory.Allocator, name string, dt arrow.DataType, build func(B)) arrow.Record {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: name, Type: dt, Nullable: true}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	build(b.Field(0).(B))
	return b.NewRecord()
}

func floatRecord(t testing.TB, mem memory.Allocator, vals []float64, valid []bool) arrow.Record {
	return record(t, mem, "x", arrow.PrimitiveTypes.Float64, func(b *array.Float64Builder) { b.AppendValues(vals, valid) })
}

func TestNumericStatistics(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{})
	vals := []float64{3, 1, 2, 2, math.NaN(), math.Inf(1), math.Inf(-1), 0, -0.0, 4}
	valid := []bool{true, true, true, true, true, true, true, true, true, false}
	rec := floatRecord(t, mem, vals, valid)
	defer rec.Release()
	p.Update(rec, nil)
	n := p.Feature("x").Num
	checks := []struct {
		name      string
		got, want float64
	}{
		{"count", float64(n.Count()), 6},
		{"nulls", float64(n.Nulls()), 1},
		{"nans", float64(n.NaNs()), 1},
		{"infs", float64(n.Infs()), 2},
		{"min", n.Min(), 0},
		{"max", n.Max(), 3},
		{"mean", n.Mean(), 8.0 / 6},
		{"variance", n.Variance(), (sq(0-8.0/6)*2 + sq(1-8.0/6) + sq(2-8.0/6)*2 + sq(3-8.0/6)) / 5},
		{"cdf(2)", n.CDF(2), 5.0 / 6},
		{"cdf below 2", n.CDFBelow(2), 3.0 / 6},
		{"cdf(-1)", n.CDF(-1), 0},
		{"cdf(10)", n.CDF(10), 1},
		{"median", n.Quantile(0.5), 1},
		{"q 0.51", n.Quantile(0.51), 2},
		{"q 0", n.Quantile(0), 0},
		{"q 1", n.Quantile(1), 3},
		{"rows", float64(p.Rows), 10},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	values, counts, ok := n.Exact()
	if !ok || !slices.Equal(values, []float64{0, 1, 2, 3}) || !slices.Equal(counts, []int64{2, 1, 2, 1}) {
		t.Errorf("Exact() = %v %v %v", values, counts, ok)
	}
	if math.Signbit(values[0]) {
		t.Errorf("-0 not normalised")
	}
}

func sq(x float64) float64 { return x * x }

// TestNumericDigest: past MaxExact the map is dropped and the digest's
// quantiles are close to the exact ones.
func TestNumericDigest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 20000)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{MaxExact: 100})
	rec := floatRecord(t, memory.DefaultAllocator, vals, nil)
	defer rec.Release()
	p.Update(rec, nil)
	n := p.Features[0].Num
	if n.IsExact() {
		t.Fatal("still exact after 20000 distinct values")
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	if n.Min() != s[0] || n.Max() != s[len(s)-1] {
		t.Errorf("min/max %v %v, want %v %v", n.Min(), n.Max(), s[0], s[len(s)-1])
	}
	for _, q := range []float64{0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999} {
		got := n.Quantile(q)
		if rank := n.CDF(got); math.Abs(rank-q) > 0.002 {
			t.Errorf("CDF(Quantile(%v)) = %v", q, rank)
		}
		want := s[int(q*float64(len(s)))]
		if math.Abs(got-want) > 0.02 {
			t.Errorf("Quantile(%v) = %v, exact %v", q, got, want)
		}
	}
	pts := n.Points()
	if !slices.IsSorted(pts) || pts[0] != s[0] || pts[len(pts)-1] != s[len(s)-1] {
		t.Errorf("Points not sorted or missing min/max")
	}
	if len(n.Centroids()) > 2*200+10 {
		t.Errorf("%d centroids for compression 200", len(n.Centroids()))
	}
}

// TestCDFError: the CDF error bound is 0 for exact counts and, for a
// digest, about π/(4·compression) (half the largest interior centroid's
// share), and it covers the actual error of CDF at every value.
func TestCDFError(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	if e := newNumeric(Options{}.withDefaults()).CDFError(); e != 0 {
		t.Errorf("empty: %v", e)
	}
	small := make([]float64, 5000)
	for i := range small {
		small[i] = float64(r.IntN(6))
	}
	big := make([]float64, 50000)
	for i := range big {
		big[i] = r.NormFloat64()
	}
	for _, c := range []struct {
		name        string
		vals        []float64
		compression float64
		lo, hi      float64
	}{
		{"exact", small, 200, 0, 0},
		{"digest δ=100", big, 100, 0.5 * math.Pi / 400, 1.5 * math.Pi / 400},
		{"digest δ=200", big, 200, 0.5 * math.Pi / 800, 1.5 * math.Pi / 800},
		{"digest δ=500", big, 500, 0.5 * math.Pi / 2000, 1.5 * math.Pi / 2000},
	} {
		p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{Compression: c.compression})
		rec := floatRecord(t, memory.DefaultAllocator, c.vals, nil)
		p.Update(rec, nil)
		rec.Release()
		n := p.Features[0].Num
		eps := n.CDFError()
		if eps < c.lo || eps > c.hi {
			t.Errorf("%s: CDFError %.5f, want in [%.5f, %.5f]", c.name, eps, c.lo, c.hi)
		}
		s := slices.Clone(c.vals)
		slices.Sort(s)
		var worst float64
		for i := 0; i < len(s); i += 7 {
			j, _ := slices.BinarySearch(s, math.Nextafter(s[i], math.Inf(1)))
			worst = max(worst, math.Abs(n.CDF(s[i])-float64(j)/float64(len(s))))
		}
		t.Logf("%s: bound %.5f, largest CDF error %.5f", c.name, eps, worst)
		if worst > eps+1e-12 {
			t.Errorf("%s: CDF error %.5f exceeds the bound %.5f", c.name, worst, eps)
		}
	}
}

// TestUpdateTypes feeds every supported Arrow type through both kinds.
func TestUpdateTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	valid := []bool{true, false, true, true}
	type tc struct {
		name      string
		rec       arrow.Record
		wantSum   float64 // numeric: sum of values
		wantCats  []CategoryCount
		typeError bool
	}
	var cases []tc
	add := func(name string, rec arrow.Record, sum float64, cats ...CategoryCount) {
		cases = append(cases, tc{name: name, rec: rec, wantSum: sum, wantCats: cats})
	}
	c := func(v string, n int64) CategoryCount { return CategoryCount{v, n} }
	add("float64", record(t, mem, "x", arrow.PrimitiveTypes.Float64, func(b *array.Float64Builder) { b.AppendValues([]float64{1.5, 9, 0.5, 3}, valid) }), 5, c("0.5", 1), c("1.5", 1), c("3", 1))
	add("float32", record(t, mem, "x", arrow.PrimitiveTypes.Float32, func(b *array.Float32Builder) { b.AppendValues([]float32{1.5, 9, 0.5, 3}, valid) }), 5, c("0.5", 1), c("1.5", 1), c("3", 1))
	add("int64", record(t, mem, "x", arrow.PrimitiveTypes.Int64, func(b *array.Int64Builder) { b.AppendValues([]int64{1, 9, -2, 3}, valid) }), 2, c("-2", 1), c("1", 1), c("3", 1))
	add("int32", record(t, mem, "x", arrow.PrimitiveTypes.Int32, func(b *array.Int32Builder) { b.AppendValues([]int32{1, 9, -2, 3}, valid) }), 2, c("-2", 1), c("1", 1), c("3", 1))
	add("int16", record(t, mem, "x", arrow.PrimitiveTypes.Int16, func(b *array.Int16Builder) { b.AppendValues([]int16{1, 9, -2, 3}, valid) }), 2, c("-2", 1), c("1", 1), c("3", 1))
	add("int8", record(t, mem, "x", arrow.PrimitiveTypes.Int8, func(b *array.Int8Builder) { b.AppendValues([]int8{1, 9, -2, 3}, valid) }), 2, c("-2", 1), c("1", 1), c("3", 1))
	add("uint64", record(t, mem, "x", arrow.PrimitiveTypes.Uint64, func(b *array.Uint64Builder) { b.AppendValues([]uint64{1, 9, 2, 3}, valid) }), 6, c("1", 1), c("2", 1), c("3", 1))
	add("uint32", record(t, mem, "x", arrow.PrimitiveTypes.Uint32, func(b *array.Uint32Builder) { b.AppendValues([]uint32{1, 9, 2, 3}, valid) }), 6, c("1", 1), c("2", 1), c("3", 1))
	add("uint16", record(t, mem, "x", arrow.PrimitiveTypes.Uint16, func(b *array.Uint16Builder) { b.AppendValues([]uint16{1, 9, 2, 3}, valid) }), 6, c("1", 1), c("2", 1), c("3", 1))
	add("uint8", record(t, mem, "x", arrow.PrimitiveTypes.Uint8, func(b *array.Uint8Builder) { b.AppendValues([]uint8{1, 9, 2, 3}, valid) }), 6, c("1", 1), c("2", 1), c("3", 1))
	add("bool", record(t, mem, "x", arrow.FixedWidthTypes.Boolean, func(b *array.BooleanBuilder) { b.AppendValues([]bool{true, true, false, true}, valid) }), 2, c("false", 1), c("true", 2))
	strs := []string{"a", "zz", "b", "a"}
	add("string", record(t, mem, "x", arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.AppendValues(strs, valid) }), math.NaN(), c("a", 2), c("b", 1))
	add("large string", record(t, mem, "x", arrow.BinaryTypes.LargeString, func(b *array.LargeStringBuilder) { b.AppendValues(strs, valid) }), math.NaN(), c("a", 2), c("b", 1))
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}
	add("dictionary", record(t, mem, "x", dict, func(b *array.BinaryDictionaryBuilder) {
		for i, s := range strs {
			if valid[i] {
				if err := b.AppendString(s); err != nil {
					t.Fatal(err)
				}
			} else {
				b.AppendNull()
			}
		}
	}), math.NaN(), c("a", 2), c("b", 1))
	cases = append(cases, tc{name: "timestamp", rec: record(t, mem, "x", arrow.FixedWidthTypes.Timestamp_ns, func(b *array.TimestampBuilder) {
		b.AppendValues([]arrow.Timestamp{1, 2, 3, 4}, nil)
	}), typeError: true})

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.rec.Release()
			p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}, {Name: "x", Kind: KindCategorical}, {Name: "missing", Kind: KindNumeric}}, Options{})
			p.Update(tt.rec, nil)
			num, cat, missing := p.Features[0], p.Features[1], p.Features[2]
			if missing.Nulls() != 4 || p.Rows != 4 {
				t.Errorf("missing column: nulls %d rows %d, want 4 4", missing.Nulls(), p.Rows)
			}
			if tt.typeError {
				if num.TypeErrors != 4 || cat.TypeErrors != 4 || num.Nulls() != 4 {
					t.Errorf("type errors %d %d nulls %d, want 4", num.TypeErrors, cat.TypeErrors, num.Nulls())
				}
				return
			}
			if math.IsNaN(tt.wantSum) {
				if num.TypeErrors != 4 {
					t.Errorf("numeric from %s: type errors %d, want 4", tt.name, num.TypeErrors)
				}
			} else {
				if num.Num.Count() != 3 || num.Nulls() != 1 {
					t.Errorf("numeric count %d nulls %d, want 3 1", num.Num.Count(), num.Nulls())
				}
				if got := num.Num.Mean() * 3; math.Abs(got-tt.wantSum) > 1e-9 {
					t.Errorf("numeric sum %v, want %v", got, tt.wantSum)
				}
			}
			if got := cat.Cat.Counts(); !slices.Equal(got, tt.wantCats) || cat.Nulls() != 1 || cat.Cat.Count() != 3 {
				t.Errorf("categories %v (nulls %d), want %v (nulls 1)", got, cat.Nulls(), tt.wantCats)
			}
		})
	}
}

// TestUpdateRows reads only the listed rows and ignores bad indices.
func TestUpdateRows(t *testing.T) {
	rec := floatRecord(t, memory.DefaultAllocator, []float64{1, 2, 3, 4, 5}, nil)
	defer rec.Release()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}, {Name: "y", Kind: KindCategorical}}, Options{})
	p.Update(rec, []int{0, 4, -1, 5, 4})
	n := p.Features[0].Num
	if p.Rows != 3 || n.Count() != 3 || n.Mean() != 11.0/3 {
		t.Errorf("rows %d count %d mean %v, want 3 3 %v", p.Rows, n.Count(), n.Mean(), 11.0/3)
	}
	if p.Features[1].Nulls() != 3 {
		t.Errorf("missing categorical nulls %d, want 3", p.Features[1].Nulls())
	}
	p.Update(rec, []int{})
	p.Update(nil, nil)
	if p.Rows != 3 {
		t.Errorf("rows %d after empty updates", p.Rows)
	}
}

// TestCategoricalOverflow: past MaxCategories new values go to Other and
// Distinct falls back to the HyperLogLog.
func TestCategoricalOverflow(t *testing.T) {
	vals := make([]string, 0, 3000)
	for i := range 3000 {
		vals = append(vals, string(rune('A'+i%26))+string(rune('a'+i/26%26))+string(rune('0'+i/676)))
	}
	rec := record(t, memory.DefaultAllocator, "c", arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.AppendValues(vals, nil) })
	defer rec.Release()
	p := NewProfile([]Field{{Name: "c", Kind: KindCategorical}}, Options{MaxCategories: 100})
	p.Update(rec, nil)
	c := p.Features[0].Cat
	if c.Len() != 100 || c.Other() != 2900 || c.Count() != 3000 {
		t.Errorf("len %d other %d count %d", c.Len(), c.Other(), c.Count())
	}
	if d := c.Distinct(); math.Abs(d-3000)/3000 > 0.03 {
		t.Errorf("Distinct = %v, want ≈ 3000", d)
	}
}

// TestUpdateAllocs: counting numeric values and known categories does not
// allocate per row.
func TestUpdateAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n = 4096
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	strs := make([]string, n)
	for i := range strs {
		strs[i] = []string{"red", "green", "blue"}[i%3]
	}
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}, {Name: "c", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	b.Field(0).(*array.Float64Builder).AppendValues(vals, nil)
	b.Field(1).(*array.StringBuilder).AppendValues(strs, nil)
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}, {Name: "c", Kind: KindCategorical}}, Options{})
	for range 5 {
		p.Update(rec, nil) // warm up buffers
	}
	allocs := testing.AllocsPerRun(20, func() { p.Update(rec, nil) })
	if perRow := allocs / n; perRow > 0.01 {
		t.Errorf("%.1f allocations per Update of %d rows", allocs, n)
	}
}

// TestCDFSorted: the one-pass evaluation equals CDF and CDFBelow.
func TestCDFSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, maxExact := range []int{1000, 10} {
		vals := make([]float64, 3000)
		for i := range vals {
			vals[i] = float64(r.IntN(300)) / 7
		}
		rec := floatRecord(t, memory.DefaultAllocator, vals, nil)
		p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{MaxExact: maxExact})
		p.Update(rec, nil)
		rec.Release()
		n := p.Features[0].Num
		xs := append(n.Points(), -1, 0.5, 3.3, 100, 1e9)
		slices.Sort(xs)
		le, lt := make([]float64, len(xs)), make([]float64, len(xs))
		n.CDFSorted(xs, le, lt)
		for i, x := range xs {
			if le[i] != n.CDF(x) || lt[i] != n.CDFBelow(x) {
				t.Errorf("maxExact %d x=%v: CDFSorted %v %v, CDF %v %v", maxExact, x, le[i], lt[i], n.CDF(x), n.CDFBelow(x))
			}
		}
	}
}

// TestParallelUpdateIsSequential: an Update large enough to share its sketches out
// among goroutines gives the profile, to the encoded bit, that one goroutine gives —
// also over many batches whose digests compress, and with rows picked.
func TestParallelUpdateIsSequential(t *testing.T) {
	rec, fields := benchRecord(t, 4096)
	defer rec.Release()
	rows := make([]int, 0, 3000)
	for r := 0; r < 4096; r += 4 {
		rows = append(rows, r, r+1, r+3)
	}
	profile := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		p := NewProfile(fields, Options{})
		for range 20 {
			p.Update(rec, nil)
			p.Update(rec, rows)
		}
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one, four := profile(1), profile(4)
	if !bytes.Equal(one, four) {
		t.Errorf("the profile updated on 4 goroutines (%d bytes) differs from the one updated on 1 (%d bytes)", len(four), len(one))
	}
}
