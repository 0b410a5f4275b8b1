package soak

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/hamba/avro/v2"
)

// The Avro and Arrow IPC streams carry a smaller event of the same model: x and
// segment, and the score. Like the JSON stream's, their values have few distinct
// values, so their windows are exactly reproducible too.
const (
	formatWindowRows = 500
	ipcRowsPerMsg    = 25
)

const formatStreamYAML = `
  - name: %[1]s
    topic: %[2]s
    format: %[3]s
    event_time: ts
%[4]s    features:
      x: {type: numeric}
      segment: {type: categorical}
    predictions:
      score: {type: numeric}
    window: {rows: %[5]d}
    reference: {warmup_windows: 2}
    limits: {max_past: %[6]s}
`

func formatStreamConfig(name, topic, format, registry string) string {
	extra := ""
	if registry != "" {
		extra = fmt.Sprintf("    schema_registry: {urls: [%q]}\n", registry)
	}
	return fmt.Sprintf(formatStreamYAML, name, topic, format, extra, formatWindowRows, maxPast)
}

// avroSchema is the schema the campaign registers; the subject does not matter to
// driftmon, which looks schemas up by id.
const avroSchema = `{"type":"record","name":"Event","fields":[
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"features","type":{"type":"record","name":"Features","fields":[
  {"name":"x","type":"double"},{"name":"segment","type":"string"}]}},
 {"name":"prediction","type":{"type":"record","name":"Prediction","fields":[
  {"name":"score","type":"double"}]}}]}`

var parsedAvro = avro.MustParse(avroSchema)

// formatRow is the n-th event of a format stream: its time and values.
type formatRow struct {
	ts      time.Time
	x       float64
	segment string
	score   float64
}

func newFormatRow(seed uint64, stream string, n int64) formatRow {
	salt := uint64(len(stream))<<56 ^ 0xf0
	r := rand.New(rand.NewPCG(seed^salt, uint64(n)))
	x, segments := drawX(r, n, formatWindowRows)
	return formatRow{
		ts:      traffic0.Add(time.Duration(n) * 40 * time.Millisecond),
		x:       x,
		segment: pick(r, []string{"a", "b", "c"}, segments),
		score:   drawScore(r, x),
	}
}

// avroMessage frames row n in the Confluent wire format with schema id.
func avroMessage(seed uint64, id int, n int64) []byte {
	return avroFrame(id, newFormatRow(seed, "avro", n))
}

// avroFrame frames one row in the Confluent wire format with schema id.
func avroFrame(id int, row formatRow) []byte {
	body, err := avro.Marshal(parsedAvro, map[string]any{"ts": row.ts, "features": map[string]any{"x": row.x, "segment": row.segment},
		"prediction": map[string]any{"score": row.score}})
	if err != nil {
		panic("BUG: an Avro event does not encode: " + err.Error())
	}
	framed := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(framed[1:], uint32(id))
	return append(framed, body...)
}

// badAvro makes the n-th bad Avro message: an id the registry does not know, a wrong
// magic byte, a body cut short, a body with bytes after the record, or a valid record
// whose event time is far ahead of or behind the wall clock (limits.max_future and
// max_past).
func badAvro(seed uint64, id int, n int64) badMessage {
	r := rand.New(rand.NewPCG(seed^0xa7, uint64(n)))
	good := avroMessage(seed, id, -1-n)
	switch n % 6 {
	case 4:
		row := newFormatRow(seed, "avro", -1-n)
		row.ts = farTime(r, true)
		return badMessage{kind: "avro-future-time", reason: "event_time_future", value: avroFrame(id, row)}
	case 5:
		row := newFormatRow(seed, "avro", -1-n)
		row.ts = farTime(r, false)
		return badMessage{kind: "avro-past-time", reason: "event_time_past", value: avroFrame(id, row)}
	case 0:
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[1:], uint32(100000+r.IntN(5))) // a few ids: the decoder remembers them
		return badMessage{kind: "avro-unknown-schema-id", reason: "unknown_schema", value: b}
	case 1:
		b := bytes.Clone(good)
		b[0] = byte(1 + r.IntN(255))
		return badMessage{kind: "avro-bad-magic", reason: "malformed", value: b}
	case 2:
		return badMessage{kind: "avro-truncated", reason: "malformed", value: good[:5+r.IntN(len(good)-6)]}
	default:
		return badMessage{kind: "avro-trailing-bytes", reason: "malformed", value: append(bytes.Clone(good), 0x02, 0x04)}
	}
}

var ipcSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_ms},
	{Name: "features.x", Type: arrow.PrimitiveTypes.Float64},
	{Name: "features.segment", Type: arrow.BinaryTypes.String},
	{Name: "prediction.score", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// farTime is an event time out of the streams' limits: ahead, 2100-01-01 or a clock
// 6–30 h fast (limits.max_future is an hour); behind, 1999-12-31 or a clock a month
// slow (limits.max_past is maxPast).
func farTime(r *rand.Rand, future bool) time.Time {
	switch {
	case future && r.IntN(2) == 0:
		return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	case future:
		return fastClock(r)
	case r.IntN(2) == 0:
		return time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)
	default:
		return slowClock(r)
	}
}

// ipcMessage is the n-th Arrow IPC message: an IPC stream of rows n×25 to n×25+24.
func ipcMessage(seed uint64, n int64) []byte {
	var rows []formatRow
	for i := n * ipcRowsPerMsg; i < (n+1)*ipcRowsPerMsg; i++ {
		rows = append(rows, newFormatRow(seed, "ipc", i))
	}
	return ipcStream(rows)
}

// ipcStream encodes rows as one IPC stream of one record batch.
func ipcStream(rows []formatRow) []byte {
	b := array.NewRecordBuilder(memory.DefaultAllocator, ipcSchema)
	defer b.Release()
	for _, row := range rows {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(row.ts.UnixMilli()))
		b.Field(1).(*array.Float64Builder).Append(row.x)
		b.Field(2).(*array.StringBuilder).Append(row.segment)
		b.Field(3).(*array.Float64Builder).Append(row.score)
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(ipcSchema))
	if err := w.Write(rec); err != nil {
		panic("BUG: an IPC stream does not encode: " + err.Error())
	}
	if err := w.Close(); err != nil {
		panic("BUG: an IPC stream does not encode: " + err.Error())
	}
	return buf.Bytes()
}

// wrongIPCSchema has a string where x's numbers belong.
var wrongIPCSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_ms},
	{Name: "features.x", Type: arrow.BinaryTypes.String},
}, nil)

// badIPC makes the n-th bad Arrow IPC message: a stream cut short, bytes that are no
// IPC stream, a stream whose x column holds strings, or a valid stream of one row
// whose event time is far ahead of or behind the wall clock (one row, so that the
// row the engine refuses is the message's one rejection).
func badIPC(seed uint64, n int64) badMessage {
	r := rand.New(rand.NewPCG(seed^0x1bc, uint64(n)))
	switch n % 5 {
	case 3, 4:
		row := newFormatRow(seed, "ipc", -1-n)
		row.ts = farTime(r, n%5 == 3)
		if n%5 == 3 {
			return badMessage{kind: "ipc-future-time", reason: "event_time_future", value: ipcStream([]formatRow{row})}
		}
		return badMessage{kind: "ipc-past-time", reason: "event_time_past", value: ipcStream([]formatRow{row})}
	case 0:
		good := ipcMessage(seed, -1-n)
		// Cut inside the record batch: a cut between the schema and the batch leaves a
		// valid stream of no rows, and one in the end-of-stream marker a whole batch.
		return badMessage{kind: "ipc-truncated", reason: "malformed", value: good[:len(good)/2+r.IntN(len(good)/2-16)]}
	case 1:
		b := make([]byte, 8+r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return badMessage{kind: "ipc-garbage", reason: "malformed", value: b}
	default:
		b := array.NewRecordBuilder(memory.DefaultAllocator, wrongIPCSchema)
		defer b.Release()
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(traffic0.UnixMilli()))
		b.Field(1).(*array.StringBuilder).Append("high")
		rec := b.NewRecord()
		defer rec.Release()
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(wrongIPCSchema))
		_ = w.Write(rec)
		_ = w.Close()
		return badMessage{kind: "ipc-wrong-type", reason: "wrong_type", value: buf.Bytes()}
	}
}
