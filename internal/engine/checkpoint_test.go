package engine

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
)

// testRecord is n seeded rows as a decoder makes them: a normal numeric x, a
// low-cardinality numeric n, a categorical c, one event a second from 2026-11-25 10:00
// UTC, models "a" and "b" alternating.
func testRecord(n int) arrow.Record {
	return seededRecord(n, rand.NewPCG(5, 1), time.Second, func(i int) string { return string(rune('a' + i%2)) })
}

// seededRecord is n rows of testRecord's columns drawn from src, one every step from
// 2026-11-25 10:00 UTC, row i of model model(i).
func seededRecord(n int, src rand.Source, step time.Duration, model func(i int) string) arrow.Record {
	r := rand.New(src)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "c", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ingest.ColEventTime, Type: arrow.PrimitiveTypes.Int64},
		{Name: ingest.ColModel, Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append("c" + strconv.Itoa(r.IntN(4)))
		b.Field(1).(*array.Float64Builder).Append(float64(r.IntN(5)))
		b.Field(2).(*array.Float64Builder).Append(r.NormFloat64())
		b.Field(3).(*array.Int64Builder).Append(start.Add(time.Duration(i) * step).UnixNano())
		b.Field(4).(*array.StringBuilder).Append(model(i))
	}
	return b.NewRecord()
}

// FuzzDecodeCheckpoint feeds arbitrary sections (with a valid checksum, so that the
// decoder gets past it) to DecodeCheckpoint: errors are fine, panics are not.
func FuzzDecodeCheckpoint(f *testing.F) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: s
    topic: events
    event_time: ts
    model: model
    model_version: model_version
    features: {x: {type: numeric}, n: {type: numeric}, c: {type: categorical}}
    window: {size: 1m}
`), config.ParseOptions{})
	if err != nil {
		f.Fatal(err)
	}
	sc := &cfg.Streams[0]
	e, err := New(sc, nil)
	if err != nil {
		f.Fatal(err)
	}
	rec := testRecord(500)
	e.ProcessPartitions(rec, nil)
	rec.Release()
	data, err := EncodeCheckpoint(e, NewPosition())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[checkpointHeader:])
	f.Add([]byte{secStream, 0})
	// The same stream with a trailing reference: model sections with kept windows.
	rolling := *sc
	rolling.Reference = config.Reference{Trailing: &config.Trailing{Windows: 3}, MinRows: 10}
	re, err := New(&rolling, nil)
	if err != nil {
		f.Fatal(err)
	}
	rec = testRecord(500)
	re.ProcessPartitions(rec, nil)
	rec.Release()
	if len(re.order) == 0 || len(re.order[0].history.windows) == 0 {
		f.Fatal("no kept windows in the trailing seed")
	}
	if data, err = EncodeCheckpoint(re, NewPosition()); err != nil {
		f.Fatal(err)
	}
	f.Add(data[checkpointHeader:])
	f.Fuzz(func(t *testing.T, body []byte) {
		b := make([]byte, checkpointHeader, checkpointHeader+len(body))
		copy(b, checkpointMagic)
		b[len(checkpointMagic)] = checkpointVersion
		b = append(b, body...)
		binary.LittleEndian.PutUint32(b[len(checkpointMagic)+1:], crc32.Checksum(body, castagnoli))
		target, err := New(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cp, err := DecodeCheckpoint(b, target, nil); err == nil {
			target.Restore(cp, true)
			target.Tick()
		}
	})
}
