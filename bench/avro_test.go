package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/driftmon/driftmon/ingest"
)

// avroSchemaID is the registry id the workload's Avro messages carry.
const avroSchemaID = 7

// avroSchema is the writer schema of the workload: the JSON event's shape, with the
// event time as timestamp-millis.
func avroSchema() string {
	var b strings.Builder
	b.WriteString(`{"type":"record","name":"Inference","fields":[` +
		`{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},` +
		`{"name":"model","type":"string"},{"name":"version","type":"string"},` +
		`{"name":"features","type":{"type":"record","name":"Features","fields":[`)
	for i := 0; i < numeric; i++ {
		fmt.Fprintf(&b, `{"name":"n%02d","type":"double"},`, i)
	}
	for i := 0; i < categorical; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","type":"string"}`, i)
	}
	b.WriteString(`]}}]}`)
	return b.String()
}

// avroEvent appends e in the Confluent wire format: magic byte, schema id, Avro binary.
func avroEvent(b []byte, e *event) []byte {
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, avroSchemaID)
	b = binary.AppendVarint(b, e.ts.UnixMilli())
	b = avroString(b, "credit")
	b = avroString(b, "7")
	for _, v := range e.nums {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, c := range e.cats {
		b = avroString(b, c)
	}
	return b
}

func avroString(b []byte, s string) []byte {
	return append(binary.AppendVarint(b, int64(len(s))), s...)
}

// registry is a schema registry that knows one schema.
type registry struct{ schema string }

func (r registry) SchemaByID(_ context.Context, id int) (sr.Schema, error) {
	if id != avroSchemaID {
		return sr.Schema{}, &sr.ResponseError{StatusCode: 404, Message: "not found"}
	}
	return sr.Schema{Schema: r.schema, Type: sr.TypeAvro}, nil
}

var avroFormat = format{
	name: "avro",
	msgs: func(evs []event) []ingest.Message {
		msgs := make([]ingest.Message, len(evs))
		for r := range evs {
			msgs[r] = ingest.Message{Value: avroEvent(nil, &evs[r]), Time: evs[0].ts}
		}
		return msgs
	},
	newDecoder: func(spec ingest.Spec) (decoder, error) {
		return ingest.NewAvroDecoder(spec, registry{avroSchema()}, memory.NewGoAllocator())
	},
}
