package sketch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// jointRecord is a record of three correlated numeric columns (x, y = x·ρ +
// noise, an integer k with ties, with nulls in y) and a categorical one.
func jointRecord(t testing.TB, r *rand.Rand, n int) arrow.Record {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64},
		{Name: "y", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "c", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	for range n {
		x := r.NormFloat64()
		b.Field(0).(*array.Float64Builder).Append(x)
		if r.IntN(20) == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.Float64Builder).Append(0.8*x + 0.6*r.NormFloat64())
		}
		b.Field(2).(*array.Int64Builder).Append(int64(r.IntN(4)))
		b.Field(3).(*array.StringBuilder).Append("a")
	}
	return b.NewRecord()
}

var jointFields = []Field{{"x", KindNumeric}, {"y", KindNumeric}, {"k", KindNumeric}, {"c", KindCategorical}}

// TestJointMomentsExact: the joint sketch's means and covariances equal the
// exact ones over the complete rows, after updates in batches and merges.
func TestJointMomentsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var parts []*Profile
	var rows [][3]float64
	for range 4 {
		rec := jointRecord(t, r, 3000)
		p := NewProfile(jointFields, Options{})
		for lo := 0; lo < 3000; lo += 700 {
			idx := make([]int, 0, 700)
			for i := lo; i < min(lo+700, 3000); i++ {
				idx = append(idx, i)
			}
			p.Update(rec, idx)
		}
		y := rec.Column(1).(*array.Float64)
		for i := range 3000 {
			if y.IsValid(i) {
				rows = append(rows, [3]float64{rec.Column(0).(*array.Float64).Value(i), y.Value(i), float64(rec.Column(2).(*array.Int64).Value(i))})
			}
		}
		rec.Release()
		parts = append(parts, p)
	}
	merged, err := MergeAll(parts...)
	if err != nil {
		t.Fatal(err)
	}
	j := merged.Joint
	if j == nil || len(j.Names) != 3 || j.Names[2] != "k" {
		t.Fatalf("joint %+v, want x, y, k", j)
	}
	if j.Count() != int64(len(rows)) {
		t.Fatalf("count %d, want %d complete rows", j.Count(), len(rows))
	}
	var mean [3]float64
	for _, row := range rows {
		for i := range 3 {
			mean[i] += row[i] / float64(len(rows))
		}
	}
	all := j.Moments()
	for a := range 3 {
		if math.Abs(all.Mean(a)-mean[a]) > 1e-9 {
			t.Errorf("mean %d: %g, want %g", a, all.Mean(a), mean[a])
		}
		for b := range 3 {
			var c float64
			for _, row := range rows {
				c += (row[a] - mean[a]) * (row[b] - mean[b])
			}
			c /= float64(len(rows))
			if math.Abs(all.Covariance(a, b)-c) > 1e-9 {
				t.Errorf("cov(%d,%d): %g, want %g", a, b, all.Covariance(a, b), c)
			}
		}
	}
	// The parts add up to the whole.
	var n int64
	for b := range JointBuckets {
		n += j.Moments(b).Count()
	}
	if n != j.Count() || j.Moments(0).Count() == 0 {
		t.Errorf("parts hold %d rows (part 0: %d), want %d", n, j.Moments(0).Count(), j.Count())
	}
}

// TestJointCanonical: the parts and the encoding of a merged profile do not
// depend on the batching or the merge order, and a round trip through the
// encoding keeps the joint sketch.
func TestJointCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	recs := []arrow.Record{jointRecord(t, r, 2000), jointRecord(t, r, 2000), jointRecord(t, r, 2000)}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	whole := NewProfile(jointFields, Options{})
	var parts []*Profile
	for _, rec := range recs {
		whole.Update(rec, nil)
		p := NewProfile(jointFields, Options{})
		p.Update(rec, nil)
		parts = append(parts, p)
	}
	a, err := MergeAll(parts[2], parts[0], parts[1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := MergeAll(parts[1], parts[2], parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(a, b) {
		t.Error("merge order changes the encoding")
	}
	for b := range JointBuckets {
		if w, m := whole.Joint.Moments(b), a.Joint.Moments(b); w.Count() != m.Count() || math.Abs(w.Covariance(0, 1)-m.Covariance(0, 1)) > 1e-12 {
			t.Fatalf("part %d: %d rows, cov %g one batch at a time; %d rows, cov %g merged", b, w.Count(), w.Covariance(0, 1), m.Count(), m.Covariance(0, 1))
		}
	}
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !Equal(a, &back) {
		t.Error("the encoding round trip changes the profile")
	}
	// A decoded profile keeps counting.
	back.Update(recs[0], nil)
	a.Update(recs[0], nil)
	if !Equal(a, &back) {
		t.Error("a decoded profile updates differently")
	}
}

// TestVersion1ProfilesDecode: a profile encoded before joint sketches existed
// still decodes, without a joint sketch, and merging it drops the other's.
func TestVersion1ProfilesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rec := jointRecord(t, r, 500)
	defer rec.Release()
	p := NewProfile(jointFields, Options{})
	p.Update(rec, nil)
	old := p.Clone()
	old.Joint, old.Grid = nil, nil
	data, err := old.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Version 1: no joint flag, grid flag or segment count at the end.
	v1 := append([]byte(nil), data[:len(data)-3]...)
	v1[len(encodingMagic)] = 1
	binary.LittleEndian.PutUint32(v1[len(encodingMagic)+1:], crc32.Checksum(v1[headerLen:], castagnoli))
	var q Profile
	if err := q.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if q.Joint != nil || q.Rows != 500 {
		t.Errorf("version 1 profile: joint %v, rows %d", q.Joint, q.Rows)
	}
	if err := p.Merge(&q); err != nil {
		t.Fatal(err)
	}
	if p.Joint != nil {
		t.Error("merging a profile without a joint sketch kept a joint sketch that misses its rows")
	}
	// Corrupt moments are an error, not a panic.
	p = profileWithRows(t, r)
	p.Grid = nil
	data, err = p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-2], data[len(data)-3] = 0x7f, 0xf8 // the last co-moment becomes NaN (the last byte is the grid flag)
	binary.LittleEndian.PutUint32(data[len(encodingMagic)+1:], crc32.Checksum(data[headerLen:], castagnoli))
	if err := q.UnmarshalBinary(data); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NaN co-moment: %v", err)
	}
}

// profileWithRows is a profile of 100 joint rows.
func profileWithRows(t testing.TB, r *rand.Rand) *Profile {
	rec := jointRecord(t, r, 100)
	defer rec.Release()
	p := NewProfile(jointFields, Options{})
	p.Update(rec, nil)
	return p
}
