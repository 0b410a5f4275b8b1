package sketch

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// benchRecord has 20 numeric columns (10 continuous, 10 with 6 integer
// values) and 5 categorical columns of 20 categories, rows rows.
func benchRecord(b testing.TB, rows int) (arrow.Record, []Field) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 1))
	var afields []arrow.Field
	var fields []Field
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("n%d", i)
		afields = append(afields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		fields = append(fields, Field{name, KindNumeric})
	}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("c%d", i)
		afields = append(afields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
		fields = append(fields, Field{name, KindCategorical})
	}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(afields, nil))
	defer bld.Release()
	for i := 0; i < 20; i++ {
		fb := bld.Field(i).(*array.Float64Builder)
		for j := 0; j < rows; j++ {
			if i < 10 {
				fb.Append(r.NormFloat64())
			} else {
				fb.Append(float64(r.IntN(6)))
			}
		}
	}
	for i := 0; i < 5; i++ {
		sb := bld.Field(20 + i).(*array.StringBuilder)
		for j := 0; j < rows; j++ {
			sb.Append(fmt.Sprintf("category-%d", r.IntN(20)))
		}
	}
	return bld.NewRecord(), fields
}

// BenchmarkUpdate measures sketching a 4096-row record of 20 numeric and 5
// categorical features; ns/row is per row of all 25 features.
func BenchmarkUpdate(b *testing.B) { benchmarkUpdate(b, Options{}) }

func benchmarkUpdate(b *testing.B, opts Options) {
	rec, fields := benchRecord(b, 4096)
	defer rec.Release()
	benchmarkUpdateOf(b, rec, fields, opts)
}

// benchmarkUpdateOf measures sketching rec into a profile of fields; ns/row is per
// row of all fields.
func benchmarkUpdateOf(b *testing.B, rec arrow.Record, fields []Field, opts Options) {
	rows := rec.NumRows()
	p := NewProfile(fields, opts)
	p.Update(rec, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Update(rec, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
}

// BenchmarkMarshal measures encoding the 25-feature profile.
func BenchmarkMarshal(b *testing.B) {
	rec, fields := benchRecord(b, 4096)
	defer rec.Release()
	p := NewProfile(fields, Options{})
	p.Update(rec, nil)
	data, _ := p.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "profile-bytes")
}

// BenchmarkSortKeys measures the radix sort of one full buffer of a continuous feature
// (8·200+1 values); ns/value is per value sorted.
func BenchmarkSortKeys(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	src := make([]uint64, 8*DefaultCompression+1)
	for i := range src {
		src[i] = floatKey(r.NormFloat64()*100 + 3)
	}
	keys := make([]uint64, len(src))
	var tmp []uint64
	b.ReportAllocs()
	for b.Loop() {
		copy(keys, src)
		sortKeys(keys, &tmp)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(src)), "ns/value")
}

// BenchmarkUpdateJoint is BenchmarkUpdate with and without the joint sketch
// (16 of the 20 numeric columns), side by side: what the joint sketch costs
// per row.
func BenchmarkUpdateJoint(b *testing.B) {
	b.Run("without", func(b *testing.B) { benchmarkUpdate(b, Options{JointFeatures: -1}) })
	b.Run("with", func(b *testing.B) { benchmarkUpdate(b, Options{}) })
}

// BenchmarkUpdateGrid is BenchmarkUpdate without and with the pair grids (all
// 120 pairs of 16 of the 20 numeric columns), side by side, the joint sketch
// on in both: what the grids cost per row.
func BenchmarkUpdateGrid(b *testing.B) {
	b.Run("without", func(b *testing.B) { benchmarkUpdate(b, Options{GridPairs: -1}) })
	b.Run("with", func(b *testing.B) { benchmarkUpdate(b, Options{}) })
}

// BenchmarkUpdatePairGrids measures what the pair grids cost at 16 and 64
// numeric features (continuous normals, 4,096-row records): ns/row for all
// features of a row with and without the grids (the joint sketch on in both),
// and the encoded bytes of a 5,000-row window's profile. With 64 features the
// default cap of 120 pairs still covers the first 16.
func BenchmarkUpdatePairGrids(b *testing.B) {
	for _, d := range []int{16, 64} {
		fields, record := normalColumns(d, rand.New(rand.NewPCG(uint64(d), 1)))
		rec, window := record(4096), record(5000)
		for _, c := range []struct {
			name string
			opts Options
		}{{"without", Options{GridPairs: -1}}, {"with", Options{}}} {
			b.Run(fmt.Sprintf("features=%d/%s", d, c.name), func(b *testing.B) {
				w := NewProfile(fields, c.opts)
				w.Update(window, nil)
				data, err := w.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				p := NewProfile(fields, c.opts)
				p.Update(rec, nil)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					p.Update(rec, nil)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/row")
				b.ReportMetric(float64(len(data)), "window-bytes")
			})
		}
		rec.Release()
		window.Release()
	}
}

// BenchmarkUpdateGridSources measures what keeping each partition's rows apart
// costs the pair grids (16 numeric features, 120 pairs, 4,096-row records): ns/row
// of a whole profile update with every row from one source, and with the rows of
// 4 partitions interleaved in runs of 64 (a consumer's batch of several partitions'
// messages); and the encoded bytes of an open 20,000-row window of 1 and 12
// partitions (what a checkpoint holds until the window closes and folds them).
func BenchmarkUpdateGridSources(b *testing.B) {
	const d = 16
	fields, record := normalColumns(d, rand.New(rand.NewPCG(16, 2)))
	sources := func(rows, parts, run int) []int32 {
		s := make([]int32, rows)
		for i := range s {
			s[i] = int32(i / run % parts)
		}
		return s
	}
	rec, window := record(4096), record(20000)
	defer rec.Release()
	defer window.Release()
	for _, c := range []struct {
		name       string
		parts, run int
	}{{"partitions=1", 1, 4096}, {"partitions=4", 4, 64}} {
		b.Run(c.name, func(b *testing.B) {
			var windowBytes [2]int
			for i, parts := range []int{1, 12} {
				w := NewProfile(fields, Options{})
				w.UpdateFrom(window, nil, sources(20000, parts, 100))
				data, err := w.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				windowBytes[i] = len(data)
			}
			srcs := sources(4096, c.parts, c.run)
			p := NewProfile(fields, Options{})
			p.UpdateFrom(rec, nil, srcs)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p.UpdateFrom(rec, nil, srcs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/row")
			b.ReportMetric(float64(windowBytes[0]), "open-window-bytes-1-partition")
			b.ReportMetric(float64(windowBytes[1]), "open-window-bytes-12-partitions")
		})
	}
}

// normalColumns returns d numeric fields n00, n01, … and a maker of records of
// rows standard normals in each, drawn from r.
func normalColumns(d int, r *rand.Rand) ([]Field, func(rows int) arrow.Record) {
	var afields []arrow.Field
	var fields []Field
	for i := range d {
		name := fmt.Sprintf("n%02d", i)
		afields = append(afields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64})
		fields = append(fields, Field{name, KindNumeric})
	}
	return fields, func(rows int) arrow.Record {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(afields, nil))
		defer bld.Release()
		for i := range d {
			fb := bld.Field(i).(*array.Float64Builder)
			for range rows {
				fb.Append(r.NormFloat64())
			}
		}
		return bld.NewRecord()
	}
}

// segmentBenchRecord is benchRecord's 25 features plus a key "country" of 20
// values of equal share.
func segmentBenchRecord(b testing.TB, rows int) (arrow.Record, []Field) {
	b.Helper()
	rec, fields := benchRecord(b, rows)
	defer rec.Release()
	r := rand.New(rand.NewPCG(2, 2))
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	for range rows {
		sb.Append(fmt.Sprintf("country-%02d", r.IntN(20)))
	}
	key := sb.NewArray()
	defer key.Release()
	cols := append(append([]arrow.Array(nil), rec.Columns()...), key)
	schema := arrow.NewSchema(append(rec.Schema().Fields(), arrow.Field{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true}), nil)
	return array.NewRecord(schema, cols, int64(rows)), append(fields, Field{"country", KindCategorical})
}

// BenchmarkUpdateSegments is BenchmarkUpdate's 25 features with and without
// segments by a 26th field of 20 values (each segment a profile of the 25
// features), side by side, with the engine's default options (no pair
// grids): ns/row for a whole row, and the heap and encoded bytes a window of
// 40,960 rows holds, and what each segment adds to them.
func BenchmarkUpdateSegments(b *testing.B) {
	const rows = 4096
	rec, fields := segmentBenchRecord(b, rows)
	defer rec.Release()
	plain := Options{GridPairs: -1}
	segmented := Options{GridPairs: -1, Segments: []SegmentKey{{By: "country", MaxValues: 256}}}
	window := func(opts Options) (heap uint64, encoded int) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		p := NewProfile(fields, opts)
		for range 10 {
			p.Update(rec, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap = ms.HeapAlloc - before
		data, err := p.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(p)
		return heap, len(data)
	}
	heap0, enc0 := window(plain)
	for _, tt := range []struct {
		name string
		opts Options
	}{{"none", plain}, {"20", segmented}} {
		b.Run(tt.name, func(b *testing.B) {
			benchmarkUpdateOf(b, rec, fields, tt.opts)
			heap, enc := window(tt.opts)
			b.ReportMetric(float64(heap), "heap-B/window")
			b.ReportMetric(float64(enc), "encoded-B/window")
			if len(tt.opts.Segments) > 0 {
				b.ReportMetric((float64(heap)-float64(heap0))/20, "heap-B/segment")
				b.ReportMetric(float64(enc-enc0)/20, "encoded-B/segment")
			}
		})
	}
}
