package sketch

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/influxdata/tdigest"
)

// TestSortKeys: the radix sort orders keys as a comparison sort does, on spread-out
// data, on data whose keys tie in their top 32 bits, and on duplicates.
func TestSortKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	gens := map[string]func() float64{
		"normal":     r.NormFloat64,
		"timestamps": func() float64 { return 1.764e9 + r.Float64()*1000 },
		"integers":   func() float64 { return float64(r.IntN(50) - 25) },
		"tiny":       func() float64 { return r.NormFloat64() * 1e-300 },
		"mixed":      func() float64 { return []float64{0, 1, -1, 1e300, -1e-300, r.NormFloat64()}[r.IntN(6)] },
	}
	var tmp []uint64
	for name, gen := range gens {
		for _, n := range []int{0, 1, 63, 64, 1600, 5000} {
			keys := make([]uint64, n)
			for i := range keys {
				keys[i] = floatKey(gen() + 0)
			}
			want := slices.Clone(keys)
			slices.Sort(want)
			sortKeys(keys, &tmp)
			if !slices.Equal(keys, want) {
				t.Errorf("%s, %d keys: not sorted", name, n)
			}
		}
	}
}

// TestFloatKey: keys order as their floats do and map back to them.
func TestFloatKey(t *testing.T) {
	vals := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 0.5, 1, math.MaxFloat64, math.Inf(1)}
	for i, v := range vals {
		if keyFloat(floatKey(v)) != v {
			t.Errorf("keyFloat(floatKey(%v)) = %v", v, keyFloat(floatKey(v)))
		}
		if i > 0 && floatKey(vals[i-1]) >= floatKey(v) {
			t.Errorf("floatKey(%v) ≥ floatKey(%v)", vals[i-1], v)
		}
	}
}

// TestCompressMatchesLibrary: one compression pass groups values into the same
// centroids as influxdata/tdigest's process does for the same values (same weights;
// means equal up to rounding), so the digest is still that library's digest.
func TestCompressMatchesLibrary(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression float64
		n           int
		gen         func(r *rand.Rand) float64
	}{
		{"normal δ=200", 200, 1601, func(r *rand.Rand) float64 { return r.NormFloat64() }},
		{"lognormal δ=100", 100, 801, func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()) }},
		{"uniform δ=500", 500, 4001, func(r *rand.Rand) float64 { return r.Float64() }},
	} {
		r := rand.New(rand.NewPCG(3, uint64(tc.n)))
		n := newNumeric(Options{Compression: tc.compression, MaxExact: 1}.withDefaults())
		n.exact = nil
		lib := tdigest.NewWithCompression(tc.compression)
		for range tc.n { // exactly one flush of the library's buffer (8·δ+1 values)
			x := tc.gen(r)
			n.push(x)
			lib.Add(x, 1)
		}
		got, want := n.centroids(), lib.Centroids(nil)
		if len(got) != len(want) {
			t.Errorf("%s: %d centroids, library %d", tc.name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].Weight != want[i].Weight || math.Abs(got[i].Mean-want[i].Mean) > 1e-12*max(1, math.Abs(want[i].Mean)) {
				t.Errorf("%s: centroid %d = %v, library %v", tc.name, i, got[i], want[i])
				break
			}
		}
	}
}

// TestBatchMatchesAdd: Update (batch moments, exact-count cache, spill in the middle
// of a column) gives the same summary as adding the values one by one.
func TestBatchMatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	vals := make([]float64, 5000)
	valid := make([]bool, len(vals))
	for i := range vals {
		switch {
		case i < 2000:
			vals[i] = float64(r.IntN(40)) // exact counts, repeated values
		case i%97 == 0:
			vals[i] = math.NaN()
		case i%89 == 0:
			vals[i] = math.Inf(-1)
		default:
			vals[i] = r.NormFloat64() // past MaxExact mid-column
		}
		valid[i] = i%50 != 0
	}
	rec := floatRecord(t, memory.DefaultAllocator, vals, valid)
	defer rec.Release()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{MaxExact: 100})
	p.Update(rec, nil)
	got := p.Features[0].Num
	want := newNumeric(p.Options())
	for i, v := range vals {
		if !valid[i] {
			want.nulls++
			continue
		}
		want.add(v)
	}
	if got.Count() != want.Count() || got.Nulls() != want.Nulls() || got.NaNs() != want.NaNs() ||
		got.Infs() != want.Infs() || got.Min() != want.Min() || got.Max() != want.Max() {
		t.Errorf("counts or extremes differ: %+v vs %+v", got, want)
	}
	if math.Abs(got.Mean()-want.Mean()) > 1e-12 || math.Abs(got.Variance()-want.Variance()) > 1e-9 {
		t.Errorf("mean %v variance %v, one by one %v %v", got.Mean(), got.Variance(), want.Mean(), want.Variance())
	}
	if got.IsExact() || !slices.Equal(got.Centroids(), want.Centroids()) {
		t.Errorf("digests differ: %d vs %d centroids", len(got.Centroids()), len(want.Centroids()))
	}
}

// TestNullBatchKeepsDigest: a batch with no finite values leaves the centroids as they
// were.
func TestNullBatchKeepsDigest(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	vals := make([]float64, 10000)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	rec := floatRecord(t, memory.DefaultAllocator, vals, nil)
	defer rec.Release()
	nulls := floatRecord(t, memory.DefaultAllocator, []float64{1, math.NaN()}, []bool{false, true})
	defer nulls.Release()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{})
	p.Update(rec, nil)
	before := p.Features[0].Num.Centroids()
	p.Update(nulls, nil)
	if after := p.Features[0].Num.Centroids(); !slices.Equal(before, after) {
		t.Errorf("%d centroids became %d after a batch of a null and a NaN", len(before), len(after))
	}
}

// TestUpdateMatchesLibrary: a feature that starts in exact mode, spills and goes on in
// digest mode ends with the centroids that the library gives when fed as Numeric used
// to feed it (the spilled counts, then every value one by one): the same weights, means
// equal up to rounding.
func TestUpdateMatchesLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	vals := make([]float64, 30000)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	opts := Options{}.withDefaults()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, opts)
	for lo := 0; lo < len(vals); lo += 1000 {
		rec := floatRecord(t, memory.DefaultAllocator, vals[lo:lo+1000], nil)
		p.Update(rec, nil)
		rec.Release()
	}
	got := p.Features[0].Num.Centroids()

	lib := tdigest.NewWithCompression(opts.Compression)
	spilled := slices.Clone(vals[:opts.MaxExact+1])
	slices.Sort(spilled)
	for _, v := range spilled {
		lib.AddCentroid(tdigest.Centroid{Mean: v, Weight: 1})
	}
	for _, v := range vals[opts.MaxExact+1:] {
		lib.Add(v, 1)
	}
	want := lib.Centroids(nil)
	if len(got) != len(want) {
		t.Fatalf("%d centroids, library %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Weight != want[i].Weight || math.Abs(got[i].Mean-want[i].Mean) > 1e-12*max(1, math.Abs(want[i].Mean)) {
			t.Fatalf("centroid %d = %v, library %v", i, got[i], want[i])
		}
	}
}

// TestRestoredUpdatesAlike: a profile decoded from its encoding, or cloned, goes on
// exactly as the original does (a checkpoint restored after a crash must give the
// windows of an uninterrupted run), including across compressions.
func TestRestoredUpdatesAlike(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	vals := make([]float64, 20000)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	rec := floatRecord(t, memory.DefaultAllocator, vals, nil)
	defer rec.Release()
	p := NewProfile([]Field{{Name: "x", Kind: KindNumeric}}, Options{})
	p.Update(rec.NewSlice(0, 7777), nil)
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	clone := p.Clone()
	rest := rec.NewSlice(7777, int64(len(vals)))
	defer rest.Release()
	for _, q := range []*Profile{p, &back, clone} {
		q.Update(rest, nil)
	}
	if !slices.Equal(p.Features[0].Num.Centroids(), back.Features[0].Num.Centroids()) ||
		!slices.Equal(p.Features[0].Num.Centroids(), clone.Features[0].Num.Centroids()) {
		t.Error("a decoded or cloned profile compresses differently from the original")
	}
}
