package sketch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// gridRows generates n rows of four numeric columns of different shapes (a
// normal, a log-normal with nulls, a 1,000 ± 4 offset, an integer 0–5) that
// depend on one another, plus -0, NaN and ±Inf now and then.
func gridRows(r *rand.Rand, n int) [][4]float64 {
	rows := make([][4]float64, n)
	for i := range rows {
		z := r.NormFloat64()
		rows[i] = [4]float64{z, math.Exp(0.7*z + 0.7*r.NormFloat64()), 1000 + 2*math.Abs(z) + r.NormFloat64(), float64(r.IntN(6))}
		switch r.IntN(200) {
		case 0:
			rows[i][0] = math.Copysign(0, -1)
		case 1:
			rows[i][1] = math.NaN() // null below
		case 2:
			rows[i][2] = math.Inf(1)
		case 3:
			rows[i][0] = math.NaN()
		}
	}
	return rows
}

var gridFields = []Field{{"z", KindNumeric}, {"lognormal", KindNumeric}, {"offset", KindNumeric}, {"k", KindNumeric}, {"c", KindCategorical}}

func gridRecord(t testing.TB, rows [][4]float64) arrow.Record {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "z", Type: arrow.PrimitiveTypes.Float64},
		{Name: "lognormal", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "offset", Type: arrow.PrimitiveTypes.Float64},
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "c", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for _, row := range rows {
		b.Field(0).(*array.Float64Builder).Append(row[0])
		if math.IsNaN(row[1]) {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.Float64Builder).Append(row[1])
		}
		b.Field(2).(*array.Float64Builder).Append(row[2])
		b.Field(3).(*array.Int64Builder).Append(int64(row[3]))
		b.Field(4).(*array.StringBuilder).Append("a")
	}
	return b.NewRecord()
}

// bucketOf is the index of the bucket holding x, given the buckets' lower edges.
func bucketOf(lower []float64, x float64) int {
	return sort.Search(len(lower), func(i int) bool { return lower[i] > x }) - 1
}

// checkGridExact checks every field's bucket counts and every pair's cells of g
// against the raw rows, binned on g's own bucket edges.
func checkGridExact(t *testing.T, g *Grid, rows [][4]float64) {
	t.Helper()
	v := g.view()
	fin := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	for a, name := range g.Names {
		lower, counts := g.Buckets(name)
		if len(lower) > GridBuckets {
			t.Errorf("%s: %d buckets, more than %d", name, len(lower), GridBuckets)
		}
		want := make([]int64, len(lower))
		for _, row := range rows {
			if x := row[a]; fin(x) {
				i := bucketOf(lower, x)
				if i < 0 || v.axes[a].bucket(floatKey(x)) != v.axes[a].ids[i] {
					t.Fatalf("%s: %g is in no bucket of %v", name, x, lower)
				}
				want[i]++
			}
		}
		if !slices.Equal(counts, want) {
			t.Errorf("%s: bucket counts %v, want %v", name, counts, want)
		}
	}
	for _, pair := range g.Pairs() {
		pc, ok := ComparePair(g, g, pair[0], pair[1])
		if !ok {
			t.Fatalf("pair %v not covered", pair)
		}
		a, b := slices.Index(g.Names, pair[0]), slices.Index(g.Names, pair[1])
		want := make([][]int64, len(pc.XLower))
		for i := range want {
			want[i] = make([]int64, len(pc.YLower))
		}
		for _, row := range rows {
			if fin(row[a]) && fin(row[b]) {
				want[bucketOf(pc.XLower, row[a])][bucketOf(pc.YLower, row[b])]++
			}
		}
		for i := range want {
			if !slices.Equal(pc.Ref[i], want[i]) {
				t.Errorf("pair %v, x bucket %d: cells %v, want %v", pair, i, pc.Ref[i], want[i])
			}
		}
	}
}

// TestGridCountsExact: each field's bucket counts and each pair's cells equal
// those of the raw rows on the grid's own edges, after updates in batches of
// different sizes, merges in any order, and an encoding round trip.
func TestGridCountsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var all [][4]float64
	var parts []*Profile
	for i, n := range []int{17, 3000, 500, 8000} {
		rows := gridRows(r, n)
		all = append(all, rows...)
		rec := gridRecord(t, rows)
		p := NewProfile(gridFields, Options{})
		step := []int{1, 700, 500, 1000}[i]
		for lo := 0; lo < n; lo += step {
			idx := make([]int, 0, step)
			for k := lo; k < min(lo+step, n); k++ {
				idx = append(idx, k)
			}
			p.Update(rec, idx)
		}
		rec.Release()
		checkGridExact(t, p.Grid, rows)
		parts = append(parts, p)
	}
	if g := parts[0].Grid; len(g.Names) != 4 || len(g.Pairs()) != 6 {
		t.Fatalf("grid covers %v, %d pairs; want the four numeric fields, 6 pairs", g.Names, len(g.Pairs()))
	}
	merged, err := MergeAll(parts[3], parts[1], parts[0], parts[2])
	if err != nil {
		t.Fatal(err)
	}
	checkGridExact(t, merged.Grid, all)
	again, err := MergeAll(parts[2], parts[0], parts[3], parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(merged, again) {
		t.Error("merge order changes the encoding")
	}
	// Merge, one profile into another, as partitions and a warm-up do.
	seq := parts[0].Clone()
	for _, p := range parts[1:] {
		if err := seq.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	checkGridExact(t, seq.Grid, all)
	data, err := merged.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	checkGridExact(t, back.Grid, all)
	if !Equal(merged, &back) {
		t.Error("the encoding round trip changes the profile")
	}
	// A decoded profile keeps counting as the original does.
	more := gridRows(r, 2000)
	rec := gridRecord(t, more)
	defer rec.Release()
	back.Update(rec, nil)
	merged.Update(rec, nil)
	if !Equal(merged, &back) {
		t.Error("a decoded profile updates differently")
	}
	checkGridExact(t, back.Grid, append(all, more...))
}

// TestGridLatticeBalance: on data of very different shapes and scales the
// lattice spreads a field's values over its buckets, so that cutting it into 8
// bins of nearly equal mass works: the heaviest bucket holds a small share.
// The shares are in bench/README.md.
func TestGridLatticeBalance(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tt := range []struct {
		name     string
		gen      func() float64
		heaviest float64 // the most the heaviest bucket may hold
	}{
		{"normal", r.NormFloat64, 0.25},
		{"uniform 0–1", r.Float64, 0.25},
		{"1,000 ± 4 (normal)", func() float64 { return 1000 + r.NormFloat64() }, 0.25},
		{"timestamp-like 1.7e9 + uniform 0–3600", func() float64 { return 1.7e9 + 3600*r.Float64() }, 0.25},
		{"log-normal σ=1", func() float64 { return math.Exp(r.NormFloat64()) }, 0.25},
		{"log-normal σ=3", func() float64 { return math.Exp(3 * r.NormFloat64()) }, 0.25},
		{"Cauchy", func() float64 { return math.Tan(math.Pi * (r.Float64() - 0.5)) }, 0.25},
		{"half zeros, half normal", func() float64 {
			if r.IntN(2) == 0 {
				return 0
			}
			return r.NormFloat64()
		}, 0.55},
	} {
		for _, c := range []struct{ n, batch int }{{500, 1000}, {50000, 1000}, {5000, 10}} {
			n := c.n
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = tt.gen()
			}
			g := &Grid{Names: []string{"x", "y"}, parts: []gridPart{newPart(0, 2)}}
			for lo := 0; lo < n; lo += c.batch {
				hi := min(lo+c.batch, n)
				vals := append(slices.Clone(vals[lo:hi]), make([]float64, hi-lo)...)
				g.parts[0].add(vals, hi-lo, new(gridScratch))
			}
			_, counts := g.Buckets("x")
			var heaviest int64
			for _, c := range counts {
				heaviest = max(heaviest, c)
			}
			share := float64(heaviest) / float64(n)
			t.Logf("%s, n=%d in batches of %d: %d buckets, the heaviest holds %.3f", tt.name, n, c.batch, len(counts), share)
			if share > tt.heaviest || len(counts) > GridBuckets {
				t.Errorf("%s, n=%d in batches of %d: %d buckets, the heaviest holds %.3f, want ≤ %g", tt.name, n, c.batch, len(counts), share, tt.heaviest)
			}
		}
	}
}

// TestVersion2ProfilesDecode: a profile written before pair grids existed
// (testdata/joint_v2.profile, made by the code of that time) still decodes,
// with its joint sketch and without grids; merging it into a profile with grids
// drops them, and re-encoding it gives the current version.
func TestVersion2ProfilesDecode(t *testing.T) {
	data, err := os.ReadFile("testdata/joint_v2.profile")
	if err != nil {
		t.Fatal(err)
	}
	if data[len(encodingMagic)] != 2 {
		t.Fatalf("testdata/joint_v2.profile has version %d, want 2", data[len(encodingMagic)])
	}
	var old Profile
	if err := old.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	// The figures the old code logged when it wrote the file.
	if old.Rows != 2000 || old.Joint == nil || old.Joint.Count() != 1900 || old.Grid != nil {
		t.Fatalf("rows %d, joint %v, grid %v; want 2,000 rows, a joint sketch of 1,900, no grid", old.Rows, old.Joint != nil, old.Grid != nil)
	}
	if cov := old.Joint.Moments().Covariance(0, 1); cov != 0.83952113221006719 {
		t.Errorf("cov(x, y) %.17g, want 0.83952113221006719", cov)
	}
	again, err := old.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := back.UnmarshalBinary(again); err != nil || again[len(encodingMagic)] != encodingVersion || !Equal(&old, &back) {
		t.Fatalf("re-encoded: version %d, %v", again[len(encodingMagic)], err)
	}
	cur := profileWithRows(t, rand.New(rand.NewPCG(1, 1)))
	if cur.Grid == nil {
		t.Fatal("a new profile has no grid")
	}
	if err := cur.Merge(&old); err != nil {
		t.Fatal(err)
	}
	if cur.Grid != nil || cur.Joint == nil {
		t.Errorf("merged with a version 2 profile: grid %v, joint %v; want no grid, a joint sketch", cur.Grid != nil, cur.Joint != nil)
	}
}

// TestGridCorrupt: grid bytes that disagree with the rest of the profile are
// an error wrapping ErrCorrupt, not a panic or a wrong grid.
func TestGridCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	rec := gridRecord(t, gridRows(r, 300))
	defer rec.Release()
	p := NewProfile(gridFields, Options{JointFeatures: -1})
	p.Update(rec, nil)
	good, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The grid section is what follows the joint flag (0, no joint sketch).
	p.Grid = nil
	noGrid, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	start := len(noGrid) - 1 // the grid flag
	for i := start + 1; i < len(good); i++ {
		for _, delta := range []byte{1, 0x40} {
			bad := slices.Clone(good)
			bad[i] ^= delta
			binary.LittleEndian.PutUint32(bad[len(encodingMagic)+1:], crc32.Checksum(bad[headerLen:], castagnoli))
			var q Profile
			err := q.UnmarshalBinary(bad)
			if err == nil {
				// A flip may give another valid grid; it must then be consistent.
				decodeHostile(t, bad)
				continue
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: %v", i, delta, err)
			}
		}
	}
}

// TestGridBatchingDoesNotMatter: the same rows in the same order give the same
// grid, to the byte, however they are cut into updates (a monitor restored from
// a checkpoint reads the rest of a window in other batches than the one that
// ran on), including cuts within the first rows the grid keeps as they came.
func TestGridBatchingDoesNotMatter(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	rows := gridRows(r, 6000)
	for i := range rows { // a tail that makes the lattices coarsen late
		if i > 4000 && i%50 == 0 {
			rows[i][0] *= 40
			rows[i][2] += 100
		}
	}
	rec := gridRecord(t, rows)
	defer rec.Release()
	var want []byte
	for _, batch := range []int{6000, 1000, 333, 97, 1} {
		p := NewProfile(gridFields, Options{JointFeatures: -1})
		for lo := 0; lo < len(rows); lo += batch {
			idx := make([]int, 0, batch)
			for k := lo; k < min(lo+batch, len(rows)); k++ {
				idx = append(idx, k)
			}
			p.Update(rec, idx)
		}
		p.Features = p.Features[len(p.Features)-1:] // the categorical one only: the digests' buffers depend on batching
		data := p.Grid.appendBinary(nil)
		if want == nil {
			want = data
			continue
		}
		if !slices.Equal(data, want) {
			t.Errorf("batches of %d rows give another grid than batches of 6,000", batch)
		}
	}
}
