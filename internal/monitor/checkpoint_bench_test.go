package monitor

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/internal/state"
)

// BenchmarkCheckpoint1000Features is the cost of one checkpoint of a stream with 1,000
// features (800 numeric, 200 categorical) and one open window of 50,000 rows plus its
// warm-up reference: encoding it and committing it to a bbolt file (fsync included).
func BenchmarkCheckpoint1000Features(b *testing.B) {
	var yaml strings.Builder
	yaml.WriteString("kafka: {brokers: [\"127.0.0.1:9092\"]}\nstreams:\n  - name: s\n    topic: t\n    window: {rows: 100000}\n    features:\n")
	var fields []arrow.Field
	for i := 0; i < 1000; i++ {
		kind, typ := "numeric", arrow.DataType(arrow.PrimitiveTypes.Float64)
		if i%5 == 4 {
			kind, typ = "categorical", arrow.BinaryTypes.String
		}
		fmt.Fprintf(&yaml, "      f%04d: {type: %s}\n", i, kind)
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%04d", i), Type: typ, Nullable: true})
	}
	cfg, err := config.Parse([]byte(yaml.String()), config.ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.New(&cfg.Streams[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	// 150,000 rows: the 100,000-row warm-up window, then half of the next.
	rng := rand.New(rand.NewPCG(1, 2))
	schema := arrow.NewSchema(fields, nil)
	const rows = 10000
	for n := 0; n < 15; n++ {
		cols := make([]arrow.Array, len(fields))
		for i, f := range fields {
			if f.Type == arrow.BinaryTypes.String {
				bld := array.NewStringBuilder(memory.DefaultAllocator)
				for r := 0; r < rows; r++ {
					bld.Append(fmt.Sprintf("c%d", rng.IntN(20)))
				}
				cols[i] = bld.NewArray()
				bld.Release()
				continue
			}
			bld := array.NewFloat64Builder(memory.DefaultAllocator)
			for r := 0; r < rows; r++ {
				bld.Append(rng.NormFloat64())
			}
			cols[i] = bld.NewArray()
			bld.Release()
		}
		rec := array.NewRecord(schema, cols, rows)
		e.Process(rec)
		rec.Release()
		for _, c := range cols {
			c.Release()
		}
	}
	st, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pos := engine.NewPosition()
	var size int
	b.ResetTimer()
	for b.Loop() {
		data, err := engine.EncodeCheckpoint(e, pos)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		if err := st.Update(func(tx *state.Tx) error { return tx.Put(checkpointBucket, "s", data) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "bytes/checkpoint")
}
