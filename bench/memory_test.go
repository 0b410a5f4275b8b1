package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/sketch"
)

// TestFeatureWindowMemory measures what one feature costs in one window: the encoded
// size (what checkpoints and baselines store) and the Go heap a live window holds,
// including the read caches an evaluation builds. Windows are filled in 1,000-row
// batches, as the monitor does. Each figure is per feature, from profiles of 10
// features of one kind (so the profile's own header and scratch are shared by 10).
//
// The upper bounds are regression guards, about 1.5× what was measured when the test
// was written; the figures are logged for bench/README.md.
func TestFeatureWindowMemory(t *testing.T) {
	const features = 10
	tests := []struct {
		name string
		kind sketch.Kind
		// value returns row i's value: a float64 or a string.
		value    func(r *rand.Rand, i int) any
		rows     int
		maxHeap  int // bytes per feature-window, after evaluation
		maxBytes int // encoded bytes per feature
	}{
		{"numeric, continuous", sketch.KindNumeric, func(r *rand.Rand, _ int) any { return r.NormFloat64() }, 10_000, 96 << 10, 8 << 10},
		{"numeric, continuous", sketch.KindNumeric, func(r *rand.Rand, _ int) any { return r.NormFloat64() }, 1_000_000, 96 << 10, 8 << 10},
		// The pair grids of the 10 fields (45 pairs of 6×6 cells) add about 170
		// encoded and 290 heap bytes per feature to the joint sketch's share.
		{"numeric, 6 values", sketch.KindNumeric, func(r *rand.Rand, _ int) any { return float64(r.IntN(6)) }, 10_000, 6 << 10, 3 << 9},
		{"categorical, 20 categories", sketch.KindCategorical, func(r *rand.Rand, _ int) any { return "category-" + strconv.Itoa(r.IntN(20)) }, 10_000, 8 << 10, 1 << 10},
		{"categorical, 5,000 values (cap 1,000)", sketch.KindCategorical, func(r *rand.Rand, _ int) any { return "value-" + strconv.Itoa(r.IntN(5000)) }, 1_000_000, 192 << 10, 40 << 10},
	}
	t.Logf("| feature | rows per window | encoded bytes | heap bytes, open | heap bytes, after evaluation |")
	t.Logf("|---|---:|---:|---:|---:|")
	for _, tt := range tests {
		if raceEnabled && tt.rows > 10_000 {
			t.Logf("| %s | %d | skipped under -race | | |", tt.name, tt.rows)
			continue
		}
		batches := memoryBatches(tt.kind, features, tt.value)
		fields := make([]sketch.Field, features)
		for i := range fields {
			fields[i] = sketch.Field{Name: fmt.Sprintf("f%d", i), Kind: tt.kind}
		}
		// Enough windows to average over, few enough to stay quick.
		windows := max(2, 2_000_000/(tt.rows*features))
		if raceEnabled {
			windows = 2
		}
		profiles := make([]*sketch.Profile, windows)

		before := heapInUse()
		for w := range profiles {
			p := sketch.NewProfile(fields, sketch.Options{})
			for i := 0; i < tt.rows; i += batchRows {
				p.Update(batches[(i/batchRows)%len(batches)], nil)
			}
			profiles[w] = p
		}
		open := heapInUse() - before
		for _, p := range profiles {
			detectors.Evaluate(p, p, detectors.Options{})
		}
		evaluated := heapInUse() - before

		data, err := profiles[0].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		empty, err := sketch.NewProfile(nil, sketch.Options{}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		n := float64(windows * features)
		encoded := (len(data) - len(empty)) / features
		t.Logf("| %s | %d | %d | %.0f | %.0f |", tt.name, tt.rows, encoded, float64(open)/n, float64(evaluated)/n)
		if float64(evaluated)/n > float64(tt.maxHeap) {
			t.Errorf("%s, %d rows: %.0f heap bytes per feature-window, want ≤ %d", tt.name, tt.rows, float64(evaluated)/n, tt.maxHeap)
		}
		if encoded > tt.maxBytes {
			t.Errorf("%s, %d rows: %d encoded bytes per feature, want ≤ %d", tt.name, tt.rows, encoded, tt.maxBytes)
		}
		runtime.KeepAlive(profiles)
		for _, b := range batches {
			b.Release()
		}
	}
}

// memoryBatches returns 100 records of 1,000 rows whose columns f0…f(n-1) all hold the
// same values, drawn from value.
func memoryBatches(kind sketch.Kind, n int, value func(r *rand.Rand, i int) any) []arrow.Record {
	r := rand.New(rand.NewPCG(5, 5))
	fields := make([]arrow.Field, n)
	for i := range fields {
		fields[i] = arrow.Field{Name: fmt.Sprintf("f%d", i), Type: arrow.PrimitiveTypes.Float64}
		if kind == sketch.KindCategorical {
			fields[i].Type = arrow.BinaryTypes.String
		}
	}
	schema := arrow.NewSchema(fields, nil)
	recs := make([]arrow.Record, 100)
	for k := range recs {
		var col arrow.Array
		if kind == sketch.KindCategorical {
			b := array.NewStringBuilder(memory.DefaultAllocator)
			for i := 0; i < batchRows; i++ {
				b.Append(value(r, i).(string))
			}
			col = b.NewArray()
			b.Release()
		} else {
			b := array.NewFloat64Builder(memory.DefaultAllocator)
			for i := 0; i < batchRows; i++ {
				b.Append(value(r, i).(float64))
			}
			col = b.NewArray()
			b.Release()
		}
		cols := make([]arrow.Array, n)
		for i := range cols {
			cols[i] = col
		}
		recs[k] = array.NewRecord(schema, cols, batchRows)
		col.Release()
	}
	return recs
}

// heapInUse is the live Go heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
