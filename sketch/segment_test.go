package sketch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var segFields = []Field{{"x", KindNumeric}, {"k", KindNumeric}, {"country", KindCategorical}, {"c", KindCategorical}}

// segRows is a generated row: a value of x, k, country and c.
type segRow struct {
	x       float64
	k       int64
	country string
	null    bool // country is null
	c       string
}

// segRowsOf draws n rows whose country has values distinct values with
// Zipf-like shares (value i ∝ 1/(i+1)), some of them null.
func segRowsOf(r *rand.Rand, n, values int) []segRow {
	weights := make([]float64, values)
	total := 0.0
	for i := range weights {
		weights[i] = 1 / float64(i+1)
		total += weights[i]
	}
	rows := make([]segRow, n)
	for i := range rows {
		u := r.Float64() * total
		j := 0
		for ; j < values-1 && u > weights[j]; j++ {
			u -= weights[j]
		}
		rows[i] = segRow{x: r.NormFloat64() + float64(j%3), k: int64(r.IntN(5)), country: fmt.Sprintf("c%03d", j),
			null: r.IntN(50) == 0, c: []string{"a", "b", "c"}[r.IntN(3)]}
	}
	return rows
}

func segRecord(t testing.TB, rows []segRow) arrow.Record {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64},
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "c", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for _, row := range rows {
		b.Field(0).(*array.Float64Builder).Append(row.x)
		b.Field(1).(*array.Int64Builder).Append(row.k)
		if row.null {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(row.country)
		}
		b.Field(3).(*array.StringBuilder).Append(row.c)
	}
	return b.NewRecord()
}

// profileOf sketches rows in batches of batch rows.
func profileOf(t testing.TB, rows []segRow, batch int, opts Options) *Profile {
	t.Helper()
	p := NewProfile(segFields, opts)
	for len(rows) > 0 {
		n := min(batch, len(rows))
		rec := segRecord(t, rows[:n])
		p.Update(rec, nil)
		rec.Release()
		rows = rows[n:]
	}
	return p
}

// segmentCounts is what must not depend on the order of the rows: the kept
// values, and each segment's (and Other's) rows and per-feature value counts.
func segmentCounts(s *Segments) string {
	var b bytes.Buffer
	line := func(name string, p *Profile) {
		fmt.Fprintf(&b, "%s rows=%d", name, p.Rows)
		for _, f := range p.Features {
			fmt.Fprintf(&b, " %s=%d/%d", f.Name, f.Total(), f.Nulls())
		}
		b.WriteByte('\n')
	}
	for _, v := range s.Values() {
		line(v, s.Profile(v))
	}
	line("(other)", s.Other)
	return b.String()
}

// TestSegmentsDoNotDependOnRowOrder: which values keep a profile, and which
// rows each profile holds, are the same for the same rows in any order, in any
// batches, and merged from any split into parts (partitions, cluster partials,
// checkpoints): the bottom-k of the values by hash, each with all its rows.
func TestSegmentsDoNotDependOnRowOrder(t *testing.T) {
	for _, values := range []int{12, 300} {
		t.Run(fmt.Sprint(values, " values"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(values)))
			rows := segRowsOf(r, 20000, values)
			opts := Options{Segments: []SegmentKey{{By: "country", MaxValues: 40}}}
			want := segmentCounts(profileOf(t, rows, 1000, opts).SegmentsBy("country"))

			// The exact answer: the 40 smallest hashes of the values seen, each with
			// its rows; the rest and the nulls in Other.
			seen := map[string]int64{}
			var other int64
			for _, row := range rows {
				if row.null {
					other++
				} else {
					seen[row.country]++
				}
			}
			vs := make([]string, 0, len(seen))
			for v := range seen {
				vs = append(vs, v)
			}
			sort.Slice(vs, func(i, j int) bool { return hashLess(segmentHash(vs[i]), vs[i], segmentHash(vs[j]), vs[j]) })
			kept := vs[:min(40, len(vs))]
			for _, v := range vs[len(kept):] {
				other += seen[v]
			}
			whole := profileOf(t, rows, 1000, opts).SegmentsBy("country")
			if got := whole.Values(); !slices.Equal(got, slices.Sorted(slices.Values(kept))) {
				t.Fatalf("kept %v, want the bottom-40 by hash %v", got, kept)
			}
			for _, v := range kept {
				if got := whole.Profile(v).Rows; got != seen[v] {
					t.Errorf("segment %s: %d rows, want %d", v, got, seen[v])
				}
			}
			if whole.Other.Rows != other {
				t.Errorf("other: %d rows, want %d", whole.Other.Rows, other)
			}

			for trial := range 4 {
				shuffled := slices.Clone(rows)
				r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if got := segmentCounts(profileOf(t, shuffled, 1+trial*300, opts).SegmentsBy("country")); got != want {
					t.Fatalf("shuffled in batches of %d: segments differ\n%s\nwant\n%s", 1+trial*300, got, want)
				}
				// Parts merged two ways: Merge in arrival order, and MergeAll.
				var parts []*Profile
				for i := 0; i < len(shuffled); i += 5000 {
					parts = append(parts, profileOf(t, shuffled[i:i+5000], 700, opts))
				}
				all, err := MergeAll(parts...)
				if err != nil {
					t.Fatal(err)
				}
				if got := segmentCounts(all.SegmentsBy("country")); got != want {
					t.Fatalf("MergeAll of 4 parts: segments differ\n%s\nwant\n%s", got, want)
				}
				acc := parts[3].Clone()
				for _, q := range parts[:3] {
					if err := acc.Merge(q); err != nil {
						t.Fatal(err)
					}
				}
				if got := segmentCounts(acc.SegmentsBy("country")); got != want {
					t.Fatalf("Merge of 4 parts: segments differ\n%s\nwant\n%s", got, want)
				}
				if n := acc.SegmentsBy("country").Len(); n > 40 {
					t.Fatalf("%d segments kept, bound 40", n)
				}
			}
		})
	}
}

// TestSegmentsEncoding: segments survive the encoding (checkpoints, cluster
// partials and baseline files are encodings), a decoded profile goes on
// updating as the original, and damaged segment bytes are an error.
func TestSegmentsEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rows := segRowsOf(r, 6000, 60)
	opts := Options{Segments: []SegmentKey{{By: "country", MaxValues: 25}}}
	p := profileOf(t, rows[:3000], 500, opts)
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !Equal(p, &q) || !Equal(p, p.Clone()) {
		t.Fatal("a profile with segments does not survive its encoding or Clone")
	}
	if s := q.SegmentsBy("country"); s == nil || s.Len() != 25 || s.Profile(s.Values()[0]).Feature("country") != nil {
		t.Fatalf("decoded segments: %+v", s)
	}
	rec := segRecord(t, rows[3000:])
	defer rec.Release()
	p.Update(rec, nil)
	q.Update(rec, nil)
	if segmentCounts(p.SegmentsBy("country")) != segmentCounts(q.SegmentsBy("country")) {
		t.Error("a decoded profile's segments update differently")
	}
	// A segment section whose value count exceeds its bound is refused.
	bad := slices.Clone(data)
	i := bytes.Index(bad, append(append([]byte{7}, "country"...), 25))
	if i < 0 {
		t.Fatal("segment header not found")
	}
	bad[i+8] = 3 // max values 3, with 25 values
	binary.LittleEndian.PutUint32(bad[len(encodingMagic)+1:], crc32.Checksum(bad[headerLen:], castagnoli))
	if err := new(Profile).UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("25 values under a bound of 3: %v, want ErrCorrupt", err)
	}
	// Merging with a profile without segments (encoded before they existed)
	// drops them: a segment missing rows would describe other traffic.
	plain := profileOf(t, rows[:100], 100, Options{})
	if err := p.Merge(plain); err != nil {
		t.Fatal(err)
	}
	if p.Segments != nil {
		t.Error("merging a profile without segments kept segments that miss its rows")
	}
}

// TestSegmentProfilesAreLean: a segment's profile has no pair grids, no joint
// sketch and no copy of the key, whatever the parent has.
func TestSegmentProfilesAreLean(t *testing.T) {
	rows := segRowsOf(rand.New(rand.NewPCG(1, 2)), 2000, 5)
	p := profileOf(t, rows, 2000, Options{Segments: []SegmentKey{{By: "country", MaxValues: 10}, {By: "x", MaxValues: 10}}})
	if p.Grid == nil || p.Joint == nil {
		t.Fatal("the parent has no grid or joint sketch")
	}
	if len(p.Segments) != 1 {
		t.Fatalf("%d segment keys, want 1 (x is numeric)", len(p.Segments))
	}
	s := p.SegmentsBy("country")
	for _, v := range s.Values() {
		q := s.Profile(v)
		if q.Grid != nil || q.Joint != nil || q.Segments != nil || q.Feature("country") != nil || len(q.Features) != 3 {
			t.Fatalf("segment %s: grid %v joint %v segments %v fields %v", v, q.Grid != nil, q.Joint != nil, q.Segments, q.Fields())
		}
	}
}

// TestSegmentKeysReadAsTheirCategories checks that a segment key of each Arrow type
// a categorical feature reads gives the texts the categorical sketch counts: a key
// column of another type would put every row in "other" without a word.
func TestSegmentKeysReadAsTheirCategories(t *testing.T) {
	mem := memory.NewGoAllocator()
	cases := []struct {
		name  string
		build func() arrow.Array
		want  []string // row by row; "" for a null
	}{
		{"int8", func() arrow.Array {
			b := array.NewInt8Builder(mem)
			b.AppendValues([]int8{-3, 7, 0, -3}, []bool{true, true, false, true})
			return b.NewArray()
		}, []string{"-3", "7", "", "-3"}},
		{"int16", func() arrow.Array {
			b := array.NewInt16Builder(mem)
			b.AppendValues([]int16{-300, 7}, nil)
			return b.NewArray()
		}, []string{"-300", "7"}},
		{"int32", func() arrow.Array {
			b := array.NewInt32Builder(mem)
			b.AppendValues([]int32{49, 1}, nil)
			return b.NewArray()
		}, []string{"49", "1"}},
		{"int64", func() arrow.Array {
			b := array.NewInt64Builder(mem)
			b.AppendValues([]int64{-1 << 40, 2}, nil)
			return b.NewArray()
		}, []string{"-1099511627776", "2"}},
		{"uint8", func() arrow.Array {
			b := array.NewUint8Builder(mem)
			b.AppendValues([]uint8{255, 0, 9}, []bool{true, true, false})
			return b.NewArray()
		}, []string{"255", "0", ""}},
		{"uint16", func() arrow.Array {
			b := array.NewUint16Builder(mem)
			b.AppendValues([]uint16{65535}, nil)
			return b.NewArray()
		}, []string{"65535"}},
		{"uint32", func() arrow.Array {
			b := array.NewUint32Builder(mem)
			b.AppendValues([]uint32{4000000000}, nil)
			return b.NewArray()
		}, []string{"4000000000"}},
		{"uint64", func() arrow.Array {
			b := array.NewUint64Builder(mem)
			b.AppendValues([]uint64{1 << 63}, nil)
			return b.NewArray()
		}, []string{"9223372036854775808"}},
		{"float64", func() arrow.Array {
			b := array.NewFloat64Builder(mem)
			b.AppendValues([]float64{3, 0.5, 1e-7, 1e21}, nil)
			return b.NewArray()
		}, []string{"3", "0.5", "1e-7", "1e+21"}},
		{"float32", func() arrow.Array {
			b := array.NewFloat32Builder(mem)
			b.AppendValues([]float32{0.1, 2}, nil)
			return b.NewArray()
		}, []string{"0.1", "2"}},
		{"bool", func() arrow.Array {
			b := array.NewBooleanBuilder(mem)
			b.AppendValues([]bool{true, false, true}, []bool{true, true, false})
			return b.NewArray()
		}, []string{"true", "false", ""}},
		{"string", func() arrow.Array {
			b := array.NewStringBuilder(mem)
			b.AppendValues([]string{"DE", "FR", ""}, []bool{true, true, false})
			return b.NewArray()
		}, []string{"DE", "FR", ""}},
		{"null", func() arrow.Array { return array.NewNull(2) }, []string{"", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			col := tc.build()
			defer col.Release()
			read := keyReader(col)
			if read == nil {
				t.Fatalf("keyReader reads no %s column", col.DataType())
			}
			c := newCategorical(Options{}.withDefaults())
			idx := make([]int, col.Len())
			for r := range idx {
				idx[r] = r
			}
			if !updateCategorical(c, col, idx) {
				t.Fatalf("the categorical sketch reads no %s column", col.DataType())
			}
			for r, want := range tc.want {
				got, ok := read(r)
				if ok != (want != "") || got != want && ok {
					t.Errorf("row %d: key %q, %v; want %q (\"\" is a null)", r, got, ok, want)
				}
				if ok && c.CountOf(got) == 0 {
					t.Errorf("row %d: key %q is not a category the sketch counted (%v)", r, got, c.Counts())
				}
			}
		})
	}
}
