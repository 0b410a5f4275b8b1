package sketch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// sampleProfile has an exact numeric, a digest numeric, a categorical with
// Other, nulls, NaN and ±Inf.
func sampleProfile(t testing.TB, seed uint64, n int) *Profile {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "small", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "big", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "cat", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < n; i++ {
		if i%17 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(int64(r.IntN(6)))
		}
		switch i % 101 {
		case 3:
			b.Field(1).(*array.Float64Builder).Append(math.NaN())
		case 5:
			b.Field(1).(*array.Float64Builder).Append(math.Inf(1 - 2*(i%2)))
		case 7:
			b.Field(1).AppendNull()
		default:
			b.Field(1).(*array.Float64Builder).Append(math.Exp(r.NormFloat64()))
		}
		if i%13 == 0 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(string(rune('a' + r.IntN(40))))
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	p := NewProfile([]Field{{"small", KindNumeric}, {"big", KindNumeric}, {"cat", KindCategorical}, {"absent", KindNumeric}}, Options{MaxCategories: 30})
	p.Update(rec, nil)
	p.Start = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	p.End = p.Start.Add(time.Hour)
	return p
}

// TestRoundTrip: every statistic survives encoding, and re-encoding gives
// the same bytes.
func TestRoundTrip(t *testing.T) {
	p := sampleProfile(t, 1, 5000)
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	again, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Error("re-encoding differs")
	}
	if !q.Start.Equal(p.Start) || !q.End.Equal(p.End) || q.Rows != p.Rows || !reflect.DeepEqual(q.Options(), p.Options()) {
		t.Errorf("header differs: %v %v %d %+v", q.Start, q.End, q.Rows, q.Options())
	}
	if !slices.Equal(q.Fields(), p.Fields()) {
		t.Fatalf("fields %v, want %v", q.Fields(), p.Fields())
	}
	for i, f := range p.Features {
		g := q.Features[i]
		if g.TypeErrors != f.TypeErrors || g.Nulls() != f.Nulls() || g.Total() != f.Total() {
			t.Errorf("%s: counts differ", f.Name)
		}
		if q.Feature(f.Name) != g {
			t.Errorf("%s: Feature() lookup broken after decode", f.Name)
		}
		if f.Num != nil {
			a, b := f.Num, g.Num
			same := func(name string, x, y float64) {
				if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
					t.Errorf("%s %s: %v, want %v", f.Name, name, y, x)
				}
			}
			same("count", float64(a.Count()), float64(b.Count()))
			same("nans", float64(a.NaNs()), float64(b.NaNs()))
			same("+inf", float64(a.PosInfs()), float64(b.PosInfs()))
			same("-inf", float64(a.NegInfs()), float64(b.NegInfs()))
			same("min", a.Min(), b.Min())
			same("max", a.Max(), b.Max())
			same("mean", a.Mean(), b.Mean())
			same("variance", a.Variance(), b.Variance())
			for _, x := range []float64{0.05, 0.5, 0.95, 0.999} {
				same("quantile", a.Quantile(x), b.Quantile(x))
				same("cdf", a.CDF(a.Quantile(x)), b.CDF(a.Quantile(x)))
			}
			if !slices.Equal(a.Points(), b.Points()) || a.IsExact() != b.IsExact() {
				t.Errorf("%s: points or mode differ", f.Name)
			}
			continue
		}
		if !slices.Equal(f.Cat.Counts(), g.Cat.Counts()) || f.Cat.Other() != g.Cat.Other() || f.Cat.Distinct() != g.Cat.Distinct() {
			t.Errorf("%s: categories differ", f.Name)
		}
	}
	// A decoded profile keeps accepting data and merging.
	if err := q.Merge(p); err != nil {
		t.Fatal(err)
	}
	if q.Rows != 2*p.Rows || q.Features[1].Num.Count() != 2*p.Features[1].Num.Count() {
		t.Errorf("merge after decode: rows %d count %d", q.Rows, q.Features[1].Num.Count())
	}
}

// TestUnmarshalCorrupt: every truncation and every single-bit flip of a
// valid encoding is rejected with ErrCorrupt, and the receiver is unchanged.
func TestUnmarshalCorrupt(t *testing.T) {
	data, err := sampleProfile(t, 2, 300).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	for n := 0; n < len(data); n++ {
		if err := q.UnmarshalBinary(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	step := max(1, len(data)/500)
	for i := 0; i < len(data); i += step {
		d := slices.Clone(data)
		d[i] ^= 1 << (i % 8)
		if err := q.UnmarshalBinary(d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit flip at %d: err %v", i, err)
		}
	}
	if q.Features != nil {
		t.Error("receiver modified by failed decodes")
	}
}

// TestCanonicalMerge: MergeAll gives the same bytes whatever the order of
// the parts, and Merge is commutative on the digest and category parts.
func TestCanonicalMerge(t *testing.T) {
	parts := []*Profile{sampleProfile(t, 3, 2000), sampleProfile(t, 4, 3000), sampleProfile(t, 5, 1000), sampleProfile(t, 6, 10)}
	want, err := MergeAll(parts...)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := want.MarshalBinary()
	r := rand.New(rand.NewPCG(1, 1))
	for range 5 {
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		got, err := MergeAll(parts...)
		if err != nil {
			t.Fatal(err)
		}
		gotBytes, _ := got.MarshalBinary()
		if !bytes.Equal(gotBytes, wantBytes) {
			t.Fatal("MergeAll depends on the order of the parts")
		}
	}
	var total int64
	for _, p := range parts {
		total += p.Rows
	}
	if want.Rows != total || !want.Start.Equal(parts[0].Start) {
		t.Errorf("rows %d, want %d", want.Rows, total)
	}
	// Merging the same inputs twice gives the same bytes.
	a, b := parts[0].Clone(), parts[0].Clone()
	_ = a.Merge(parts[1])
	_ = b.Merge(parts[1])
	if !Equal(a, b) {
		t.Error("Merge is not deterministic")
	}
}

func TestMergeErrors(t *testing.T) {
	p := NewProfile([]Field{{"a", KindNumeric}}, Options{})
	for name, o := range map[string]*Profile{
		"nil":        nil,
		"more":       NewProfile([]Field{{"a", KindNumeric}, {"b", KindNumeric}}, Options{}),
		"other name": NewProfile([]Field{{"b", KindNumeric}}, Options{}),
		"other kind": NewProfile([]Field{{"a", KindCategorical}}, Options{}),
	} {
		if err := p.Merge(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := MergeAll(); err == nil {
		t.Error("MergeAll(): no error")
	}
}

func TestClone(t *testing.T) {
	p := sampleProfile(t, 7, 2000)
	c := p.Clone()
	if !Equal(p, c) {
		t.Fatal("clone differs")
	}
	_ = c.Merge(p)
	if Equal(p, c) {
		t.Fatal("clone shares state with the original")
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{KindNumeric, KindCategorical} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKind("ordinal"); err == nil {
		t.Error("ParseKind(ordinal): no error")
	}
}

// withHeader prefixes a payload with a valid header and checksum, so the
// fuzzer explores the payload decoder instead of the checksum.
func withHeader(payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(payload))
	copy(b, encodingMagic)
	b[len(encodingMagic)] = encodingVersion
	binary.LittleEndian.PutUint32(b[len(encodingMagic)+1:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// FuzzUnmarshalProfile: hostile bytes give an error or a profile that can
// be read, re-encoded and merged — never a panic. Each input is tried as is
// and as a payload behind a valid header and checksum.
func FuzzUnmarshalProfile(f *testing.F) {
	for i, n := range []int{0, 1, 50, 3000} {
		data, err := sampleProfile(f, uint64(i), n).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[headerLen:])
	}
	// Profile files as `driftmon baseline` writes them (from 40 rows of the car-loan
	// data), whole, cut short and with a bit flipped.
	files, err := filepath.Glob("testdata/*.profile")
	if err != nil || len(files) == 0 {
		f.Fatalf("no profile files in testdata: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		if len(data) > headerLen {
			f.Add(data[headerLen:])
		}
	}
	empty, _ := NewProfile(nil, Options{}).MarshalBinary()
	f.Add(empty)
	f.Add([]byte("DMPF\x01\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeHostile(t, data)
		decodeHostile(t, withHeader(data))
	})
}

func decodeHostile(t *testing.T, data []byte) {
	t.Helper()
	var p Profile
	if err := p.UnmarshalBinary(data); err != nil {
		return
	}
	for _, ft := range p.Features {
		if ft.Num != nil {
			n := ft.Num
			_ = n.Quantile(0.5) + n.CDF(n.Mean()) + n.CDFBelow(0) + n.Variance()
			_, _, _ = n.Exact()
			_ = n.Points()
		} else {
			_ = ft.Cat.Distinct()
			_ = ft.Cat.Counts()
		}
	}
	again, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	var q Profile
	if err := q.UnmarshalBinary(again); err != nil {
		t.Fatalf("decode of re-encoding: %v", err)
	}
	c := p.Clone()
	if err := c.Merge(&q); err != nil {
		t.Fatalf("merge: %v", err)
	}
}

// TestEncodedSize measures the bytes one feature adds to an encoded profile
// (bench/README.md quotes them) and bounds them: a numeric feature with
// exact counts costs its distinct values, a digest at most its ~2×
// compression centroids of 16 bytes whatever the row count, a categorical
// feature its category strings plus a HyperLogLog that is sparse (small)
// for a few thousand distinct values and dense (16 KiB at precision 14)
// beyond.
func TestEncodedSize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	num := func(n int, f func() float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	cat := func(n, k int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("category-%d", r.IntN(k))
		}
		return out
	}
	empty, err := NewProfile(nil, Options{}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		num  []float64
		cat  []string
		max  int
	}{
		{"numeric exact, 6 values, 1e4 rows", num(1e4, func() float64 { return float64(r.IntN(6)) }), nil, 150},
		{"numeric exact, 256 values, 1e4 rows", num(1e4, func() float64 { return float64(r.IntN(256)) }), nil, 256*11 + 100},
		{"numeric digest, normal, 1e4 rows", num(1e4, r.NormFloat64), nil, 2*200*16 + 100},
		{"numeric digest, normal, 1e5 rows", num(1e5, r.NormFloat64), nil, 2*200*16 + 100},
		{"categorical, 20 categories, 1e4 rows", nil, cat(1e4, 20), 600},
		{"categorical, 1000 categories, 1e5 rows", nil, cat(1e5, 1000), 1000*16 + 8000},
		{"categorical, 1e5 categories (overflow), 1e5 rows", nil, cat(1e5, 1e5), 1000*16 + 16500},
	}
	t.Log("| feature | bytes |")
	for _, tt := range tests {
		kind := KindNumeric
		if tt.cat != nil {
			kind = KindCategorical
		}
		p := NewProfile([]Field{{Name: "x", Kind: kind}}, Options{})
		var rec arrow.Record
		if tt.cat != nil {
			rec = record(t, memory.DefaultAllocator, "x", arrow.BinaryTypes.String, func(b *array.StringBuilder) { b.AppendValues(tt.cat, nil) })
		} else {
			rec = floatRecord(t, memory.DefaultAllocator, tt.num, nil)
		}
		p.Update(rec, nil)
		rec.Release()
		data, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		size := len(data) - len(empty)
		t.Logf("| %s | %d |", tt.name, size)
		if size > tt.max {
			t.Errorf("%s: %d bytes, want at most %d", tt.name, size, tt.max)
		}
	}
}

// TestUnmarshalMemory bounds what decoding a profile of 100,000 features allocates, as a
// multiple of its encoded size, so that a profile file costs memory in proportion to
// its bytes. Before each feature was allocated twice it took 16× (numeric) and 34×
// (categorical).
func TestUnmarshalMemory(t *testing.T) {
	for _, tt := range []struct {
		kind Kind
		max  float64
	}{{KindNumeric, 12}, {KindCategorical, 24}} {
		fields := make([]Field, 100000)
		for i := range fields {
			fields[i] = Field{Name: fmt.Sprint(i), Kind: tt.kind}
		}
		data, err := NewProfile(fields, Options{}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var p Profile
		if err := p.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(data))
		t.Logf("%s: %d bytes decode with %.1f× their size allocated", tt.kind, len(data), ratio)
		if ratio > tt.max {
			t.Errorf("%s: decoding allocated %.1f× the encoded size, want at most %g×", tt.kind, ratio, tt.max)
		}
	}
}
