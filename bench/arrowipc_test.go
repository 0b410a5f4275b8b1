package bench

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/ingest"
)

// arrowIPCFormats are the workload as Arrow IPC streams, the event's shape as columns
// (ts as timestamp[ms], model, version, a struct "features"): one stream per event, and
// one stream of 1,000 events per message, as a producer that batches sends them.
var arrowIPCFormats = []format{
	{name: "arrow-ipc-1-row-per-msg", msgs: func(evs []event) []ingest.Message { return arrowIPCMessages(evs, 1) }, newDecoder: newArrowIPCDecoder},
	{name: "arrow-ipc-1000-rows-per-msg", msgs: func(evs []event) []ingest.Message { return arrowIPCMessages(evs, batchRows) }, newDecoder: newArrowIPCDecoder},
}

func newArrowIPCDecoder(spec ingest.Spec) (decoder, error) {
	return ingest.NewArrowIPCDecoder(spec, memory.NewGoAllocator())
}

// arrowIPCSchema is the Arrow form of the workload's events.
func arrowIPCSchema() *arrow.Schema {
	var fs []arrow.Field
	for i := 0; i < numeric; i++ {
		fs = append(fs, arrow.Field{Name: fmt.Sprintf("n%02d", i), Type: arrow.PrimitiveTypes.Float64})
	}
	for i := 0; i < categorical; i++ {
		fs = append(fs, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: arrow.BinaryTypes.String})
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		{Name: "model", Type: arrow.BinaryTypes.String},
		{Name: "version", Type: arrow.BinaryTypes.String},
		{Name: "features", Type: arrow.StructOf(fs...)},
	}, nil)
}

// arrowIPCMessages encodes evs as IPC streams of rows events each.
func arrowIPCMessages(evs []event, rows int) []ingest.Message {
	schema := arrowIPCSchema()
	var msgs []ingest.Message
	for len(evs) > 0 {
		k := min(rows, len(evs))
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		feats := b.Field(3).(*array.StructBuilder)
		for _, e := range evs[:k] {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts.UnixMilli()))
			b.Field(1).(*array.StringBuilder).Append("credit")
			b.Field(2).(*array.StringBuilder).Append("7")
			feats.Append(true)
			for i, v := range e.nums {
				feats.FieldBuilder(i).(*array.Float64Builder).Append(v)
			}
			for i, c := range e.cats {
				feats.FieldBuilder(numeric + i).(*array.StringBuilder).Append(c)
			}
		}
		rec := b.NewRecord()
		b.Release()
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		if err := w.Write(rec); err != nil {
			panic("BUG: cannot write an IPC stream: " + err.Error())
		}
		if err := w.Close(); err != nil {
			panic("BUG: cannot close an IPC stream: " + err.Error())
		}
		rec.Release()
		msgs = append(msgs, ingest.Message{Value: buf.Bytes(), Time: evs[0].ts})
		evs = evs[k:]
	}
	return msgs
}
