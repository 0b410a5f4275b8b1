package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// avroRegistry is a fake schema registry (srfake, spoken to over HTTP by *sr.Client) that
// registers each schema of the tests under its own subject.
type avroRegistry struct {
	fake   *srfake.Registry
	client *sr.Client
	ids    map[string]int
	gets   atomic.Int64 // GET /schemas/ids/... requests served
}

func newAvroRegistry(t testing.TB) *avroRegistry {
	t.Helper()
	r := &avroRegistry{fake: srfake.New(), ids: map[string]int{}}
	t.Cleanup(r.fake.Close)
	r.fake.Intercept(func(_ http.ResponseWriter, req *http.Request) bool {
		if strings.HasPrefix(req.URL.Path, "/schemas/ids/") {
			r.gets.Add(1)
		}
		return false
	})
	cl, err := sr.NewClient(sr.URLs(r.fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	r.client = cl
	return r
}

// register returns the id of schema, registering it on first use.
func (r *avroRegistry) register(t testing.TB, schema string) int {
	t.Helper()
	if id, ok := r.ids[schema]; ok {
		return id
	}
	id, _, err := r.fake.RegisterSchema(fmt.Sprintf("subject-%d-value", len(r.ids)), sr.Schema{Schema: schema})
	if err != nil {
		t.Fatalf("register schema: %v\n%s", err, schema)
	}
	r.ids[schema] = id
	return id
}

// message encodes v with schema in the Confluent wire format.
func (r *avroRegistry) message(t testing.TB, schema string, v any) Message {
	t.Helper()
	return Message{Value: confluent(r.register(t, schema), avroEncode(t, schema, v)), Time: kafkaTime}
}

// parsedSchemas caches avro.Parse for avroEncode, keyed by schema text.
var parsedSchemas sync.Map

func avroEncode(t testing.TB, schema string, v any) []byte {
	t.Helper()
	var s avro.Schema
	if p, ok := parsedSchemas.Load(schema); ok {
		s = p.(avro.Schema)
	} else {
		var err error
		if s, err = avro.ParseWithCache(schema, "", &avro.SchemaCache{}); err != nil {
			t.Fatalf("parse schema: %v\n%s", err, schema)
		}
		parsedSchemas.Store(schema, s)
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

// confluent frames an Avro body: magic byte 0, big-endian schema id, body.
func confluent(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

func newTestAvroDecoder(t testing.TB, spec Spec, reg SchemaRegistry) (*AvroDecoder, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	d, err := NewAvroDecoder(spec, reg, mem)
	if err != nil {
		t.Fatalf("NewAvroDecoder: %v", err)
	}
	return d, mem
}

// avroEventSchema is the event of DESIGN.md §3 as an Avro record whose ts, model,
// car_value and salary_range have the given types, with fields the spec does not ask
// for around them.
func avroEventSchema(ts, model, carValue, salaryRange string) string {
	return `{"type":"record","name":"Event","namespace":"t","fields":[
 {"name":"event_id","type":"string"},
 {"name":"ts","type":` + ts + `},
 {"name":"model","type":` + model + `},
 {"name":"model_version","type":["null","string"]},
 {"name":"features","type":{"type":"record","name":"Features","fields":[
   {"name":"tags","type":{"type":"array","items":"string"}},
   {"name":"car_value","type":` + carValue + `},
   {"name":"extra","type":{"type":"map","values":"long"}},
   {"name":"salary_range","type":` + salaryRange + `},
   {"name":"blob","type":{"type":"fixed","name":"Blob","size":3}}]}},
 {"name":"prediction","type":["null",{"type":"record","name":"Prediction","fields":[
   {"name":"y_pred","type":"int"},{"name":"y_pred_proba","type":"double"}]}]}]}`
}

func avroEvent(ts, model, carValue, salaryRange any) map[string]any {
	return map[string]any{
		"event_id": "a1", "ts": ts, "model": model, "model_version": "3.2.0",
		"features": map[string]any{
			"tags": []any{"x", "y"}, "car_value": carValue, "extra": map[string]any{"k": int64(1)},
			"salary_range": salaryRange, "blob": [3]byte{1, 2, 3},
		},
		"prediction": map[string]any{"t.Prediction": map[string]any{"y_pred": 1, "y_pred_proba": 0.99}},
	}
}

// avroField is the Avro type and value of one field of avroEventSchema.
type avroField struct {
	typ string
	val any
}

var (
	tsMillis    = avroField{`{"type":"long","logicalType":"timestamp-millis"}`, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	modelString = avroField{`"string"`, "car-loan"}
	carDouble   = avroField{`"double"`, 39811.0}
	salString   = avroField{`"string"`, "40K - 60K €"}
)

func TestAvroDecode(t *testing.T) {
	const rest = ` "car-loan" "3.2.0" 39811 "40K - 60K €" 0.99`
	const kafkaRow = `2026-11-25T09:00:00Z`
	dec := func(unscaled int64, scale int) *big.Rat { return big.NewRat(unscaled, int64(math.Pow10(scale))) }
	tests := []struct {
		name                string
		ts, model, car, sal avroField // zero: the defaults above
		want                string    // rendered row: time model version car_value salary_range y_pred_proba
		reason              Reason
		errHas              string
	}{
		{name: "design example", want: `2026-11-25T10:00:00Z` + rest},

		// Event time.
		{name: "timestamp-micros", ts: avroField{`{"type":"long","logicalType":"timestamp-micros"}`, int64(1764064800123456)},
			want: `2025-11-25T10:00:00.123456Z` + rest},
		{name: "timestamp-nanos", ts: avroField{`{"type":"long","logicalType":"timestamp-nanos"}`, int64(1764064800123456789)},
			want: `2025-11-25T10:00:00.123456789Z` + rest},
		{name: "local-timestamp-millis is UTC", ts: avroField{`{"type":"long","logicalType":"local-timestamp-millis"}`, int64(1764064800123)},
			want: `2025-11-25T10:00:00.123Z` + rest},
		{name: "date", ts: avroField{`{"type":"int","logicalType":"date"}`, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
			want: `2026-11-25T00:00:00Z` + rest},
		{name: "long unix seconds", ts: avroField{`"long"`, int64(1764064800)}, want: `2025-11-25T10:00:00Z` + rest},
		{name: "long unix milliseconds", ts: avroField{`"long"`, int64(1764064800123)}, want: `2025-11-25T10:00:00.123Z` + rest},
		{name: "int unix seconds", ts: avroField{`"int"`, 1764064800}, want: `2025-11-25T10:00:00Z` + rest},
		{name: "double unix seconds", ts: avroField{`"double"`, 1764064800.25}, want: `2025-11-25T10:00:00.25Z` + rest},
		{name: "RFC 3339 string", ts: avroField{`"string"`, "2026-11-25T11:00:00.5+01:00"}, want: `2026-11-25T10:00:00.5Z` + rest},
		{name: "null time is the Kafka time", ts: avroField{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, nil},
			want: kafkaRow + rest},
		{name: "time in a union", ts: avroField{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, map[string]any{"long.timestamp-millis": time.UnixMilli(1764064800000).UTC()}},
			want: `2025-11-25T10:00:00Z` + rest},

		// Number fields.
		{name: "int in a number field", car: avroField{`"int"`, -7}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" -7 "40K - 60K €" 0.99`},
		{name: "long in a number field", car: avroField{`"long"`, int64(1) << 53}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 9.007199254740992e+15 "40K - 60K €" 0.99`},
		{name: "float is widened through its decimal form", car: avroField{`"float"`, float32(0.1)}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 0.1 "40K - 60K €" 0.99`},
		{name: "boolean in a number field", car: avroField{`"boolean"`, true}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 1 "40K - 60K €" 0.99`},
		{name: "null number", car: avroField{`["null","double"]`, nil}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" null "40K - 60K €" 0.99`},
		{name: "number in a union", car: avroField{`["null","string","double"]`, map[string]any{"double": 2.5}}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 2.5 "40K - 60K €" 0.99`},
		{name: "decimal bytes", car: avroField{`{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}`, dec(-12345, 2)},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" -123.45 "40K - 60K €" 0.99`},
		{name: "decimal fixed", car: avroField{`{"type":"fixed","name":"Money","size":12,"logicalType":"decimal","precision":20,"scale":3}`, dec(1234567890123456789, 3)},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 1.2345678901234568e+15 "40K - 60K €" 0.99`},
		{name: "NaN string in a number field", car: avroField{`"string"`, "NaN"}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" NaN "40K - 60K €" 0.99`},
		{name: "-Infinity string in a number field", car: avroField{`"string"`, "-Infinity"}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" -Inf "40K - 60K €" 0.99`},

		// String fields.
		{name: "enum in a string field", sal: avroField{`{"type":"enum","name":"Range","symbols":["LOW","HIGH"]}`, "HIGH"},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "HIGH" 0.99`},
		{name: "enum model", model: avroField{`{"type":"enum","name":"Model","symbols":["car_loan","home_loan"]}`, "home_loan"},
			want: `2026-11-25T10:00:00Z "home_loan" "3.2.0" 39811 "40K - 60K €" 0.99`},
		{name: "boolean in a string field", sal: avroField{`"boolean"`, false}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "false" 0.99`},
		{name: "long in a string field", sal: avroField{`"long"`, int64(-12345678901234)}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "-12345678901234" 0.99`},
		{name: "double in a string field", sal: avroField{`"double"`, 3.0}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "3" 0.99`},
		{name: "small double in a string field", sal: avroField{`"double"`, -1.25e-7}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "-1.25e-07" 0.99`},
		{name: "float in a string field", sal: avroField{`"float"`, float32(0.1)}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "0.1" 0.99`},
		{name: "infinite double in a string field", sal: avroField{`"double"`, math.Inf(1)}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "Infinity" 0.99`},
		{name: "large negative decimal in a string field", sal: avroField{`{"type":"bytes","logicalType":"decimal","precision":30,"scale":2}`,
			new(big.Rat).SetFrac(new(big.Int).Exp(big.NewInt(10), big.NewInt(22), nil), big.NewInt(-100))},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "-100000000000000000000" 0.99`},
		{name: "decimal in a string field", sal: avroField{`{"type":"bytes","logicalType":"decimal","precision":9,"scale":4}`, dec(5, 4)},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "0.0005" 0.99`},
		{name: "null string", sal: avroField{`["null","string"]`, nil}, want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 null 0.99`},
		{name: "empty and unicode strings", model: avroField{`"string"`, ""}, sal: avroField{`"string"`, "é€😀\x00"},
			want: `2026-11-25T10:00:00Z "" "3.2.0" 39811 "é€😀\x00" 0.99`},
		{name: "uuid string", sal: avroField{`{"type":"string","logicalType":"uuid"}`, "8b1b1a3e-5a4c-4f3a-9d5e-0c7e2f1a6b2d"},
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "8b1b1a3e-5a4c-4f3a-9d5e-0c7e2f1a6b2d" 0.99`},

		// Rejections.
		{name: "string in a number field", car: avroField{`"string"`, "39811"}, reason: ReasonWrongType, errHas: `"features.car_value": string in a number field`},
		{name: "enum in a number field", car: avroField{`{"type":"enum","name":"E","symbols":["A"]}`, "A"}, reason: ReasonWrongType, errHas: "enum in a number field"},
		{name: "bytes in a number field", car: avroField{`"bytes"`, []byte("x")}, reason: ReasonWrongType, errHas: "bytes in a number field"},
		{name: "record in a number field", car: avroField{`{"type":"record","name":"R","fields":[{"name":"v","type":"double"}]}`, map[string]any{"v": 1.0}},
			reason: ReasonWrongType, errHas: "record in a number field"},
		{name: "map in a number field", car: avroField{`{"type":"map","values":"double"}`, map[string]any{"v": 1.0}}, reason: ReasonWrongType, errHas: "map in a number field"},
		{name: "array in a string field", sal: avroField{`{"type":"array","items":"string"}`, []any{"a"}}, reason: ReasonWrongType, errHas: `"features.salary_range": array in a string field`},
		{name: "bytes in a string field", sal: avroField{`"bytes"`, []byte("a")}, reason: ReasonWrongType, errHas: "bytes in a string field"},
		{name: "fixed in model", model: avroField{`{"type":"fixed","name":"F","size":2}`, [2]byte{'a', 'b'}}, reason: ReasonWrongType, errHas: `"model": fixed`},
		{name: "invalid UTF-8", sal: avroField{`"string"`, "\xff"}, reason: ReasonMalformed, errHas: "UTF-8"},
		{name: "time is a boolean", ts: avroField{`"boolean"`, true}, reason: ReasonBadTime, errHas: `"ts": event time is a boolean`},
		{name: "time is a record", ts: avroField{`{"type":"record","name":"T","fields":[]}`, map[string]any{}}, reason: ReasonBadTime},
		{name: "time of day", ts: avroField{`{"type":"int","logicalType":"time-millis"}`, 10 * time.Second}, reason: ReasonBadTime, errHas: "time of day"},
		{name: "time text", ts: avroField{`"string"`, "yesterday"}, reason: ReasonBadTime},
		{name: "time overflow", ts: avroField{`{"type":"long","logicalType":"timestamp-millis"}`, time.UnixMilli(math.MaxInt64 / 2)}, reason: ReasonBadTime, errHas: "1678..2262"},
		{name: "bad time wins over wrong type", ts: avroField{`"boolean"`, true}, car: avroField{`"string"`, "x"}, reason: ReasonBadTime},
	}
	reg := newAvroRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := func(f, def avroField) avroField {
				if f.typ == "" {
					return def
				}
				return f
			}
			ts, model, car, sal := f(tt.ts, tsMillis), f(tt.model, modelString), f(tt.car, carDouble), f(tt.sal, salString)
			msg := reg.message(t, avroEventSchema(ts.typ, model.typ, car.typ, sal.typ), avroEvent(ts.val, model.val, car.val, sal.val))
			d, mem := newTestAvroDecoder(t, testSpec, reg.client)
			defer mem.AssertSize(t, 0)
			defer d.Release()
			rec, rej := d.Decode([]Message{msg})
			defer rec.Release()
			checkOne(t, rec, rej, tt.want, tt.reason, tt.errHas)
		})
	}
}

// checkOne checks the outcome of decoding one message: a row rendered as want, or a
// rejection with reason whose error contains errHas.
func checkOne(t *testing.T, rec arrow.Record, rej []Rejected, want string, reason Reason, errHas string) {
	t.Helper()
	if reason != "" {
		if rec.NumRows() != 0 || len(rej) != 1 {
			t.Fatalf("want one rejection, got %d rows %v", rec.NumRows(), rej)
		}
		if rej[0].Reason != reason || rej[0].Index != 0 {
			t.Errorf("rejected as %s at %d (%v), want %s", rej[0].Reason, rej[0].Index, rej[0].Err, reason)
		}
		if !strings.Contains(rej[0].Err.Error(), errHas) {
			t.Errorf("error %q does not contain %q", rej[0].Err, errHas)
		}
		return
	}
	if len(rej) != 0 {
		t.Fatalf("rejected: %s: %v", rej[0].Reason, rej[0].Err)
	}
	if got := rowStrings(t, rec); len(got) != 1 || got[0] != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAvroDecodeMalformed(t *testing.T) {
	reg := newAvroRegistry(t)
	schema := avroEventSchema(tsMillis.typ, modelString.typ, carDouble.typ, salString.typ)
	good := reg.message(t, schema, avroEvent(tsMillis.val, modelString.val, carDouble.val, salString.val)).Value
	id := reg.register(t, schema)

	// A small schema to craft bodies byte by byte.
	small := `{"type":"record","name":"S","fields":[
 {"name":"u","type":["null","double"]},
 {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
 {"name":"b","type":"boolean"},
 {"name":"i","type":"int"},
 {"name":"model","type":"string"}]}`
	sid := reg.register(t, small)
	body := func(f func(w *avro.Writer)) []byte {
		var buf bytes.Buffer
		w := avro.NewWriter(&buf, 64)
		f(w)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return confluent(sid, buf.Bytes())
	}
	valid := func(w *avro.Writer) {
		w.WriteLong(0)
		w.WriteInt(1)
		w.WriteBool(true)
		w.WriteInt(5)
		w.WriteString("m")
	}
	smallSpec := Spec{Model: "model", Fields: []Field{{Name: "u", Path: "u", Type: Number}}}

	unknown := confluent(4242, good[5:])
	tests := []struct {
		name   string
		spec   Spec
		msg    []byte
		reason Reason
		errHas string
	}{
		{"valid small body", smallSpec, body(valid), "", ""},
		{"empty", testSpec, nil, ReasonMalformed, "shorter than the 5-byte Confluent header"},
		{"header only part", testSpec, []byte{0, 0, 0}, ReasonMalformed, "shorter"},
		{"no magic byte", testSpec, append([]byte{1}, good[1:]...), ReasonMalformed, "magic byte is 1"},
		{"JSON instead of Avro", testSpec, []byte(`{"ts":1}`), ReasonMalformed, "magic byte is 123"},
		{"truncated", testSpec, good[:len(good)-3], ReasonMalformed, "unexpected end of input"},
		{"header and nothing else", testSpec, good[:5], ReasonMalformed, "end of input"},
		{"trailing bytes", testSpec, append(append([]byte(nil), good...), 0), ReasonMalformed, "1 trailing bytes"},
		{"union index out of range", smallSpec, body(func(w *avro.Writer) { w.WriteLong(2) }), ReasonMalformed, "union index out of range"},
		{"negative union index", smallSpec, body(func(w *avro.Writer) { w.WriteLong(-1) }), ReasonMalformed, "union index"},
		{"enum index out of range", smallSpec, body(func(w *avro.Writer) { w.WriteLong(0); w.WriteInt(2) }), ReasonMalformed, "enum index out of range"},
		{"boolean byte 2", smallSpec, body(func(w *avro.Writer) { w.WriteLong(0); w.WriteInt(0); w.WriteInt(1) }), ReasonMalformed, "invalid boolean"},
		{"int out of range", smallSpec, body(func(w *avro.Writer) { w.WriteLong(0); w.WriteInt(0); w.WriteBool(true); w.WriteLong(1 << 40) }), ReasonMalformed, "int out of range"},
		{"negative string length", smallSpec, body(func(w *avro.Writer) {
			w.WriteLong(0)
			w.WriteInt(0)
			w.WriteBool(true)
			w.WriteInt(1)
			w.WriteLong(-3)
		}), ReasonMalformed, "length beyond the end"},
		{"string length beyond the end", smallSpec, body(func(w *avro.Writer) {
			w.WriteLong(0)
			w.WriteInt(0)
			w.WriteBool(true)
			w.WriteInt(1)
			w.WriteLong(1 << 40)
		}), ReasonMalformed, "length beyond the end"},
		{"varint longer than 10 bytes", smallSpec, confluent(sid, bytes.Repeat([]byte{0xff}, 12)), ReasonMalformed, "varint longer than 10 bytes"},
		{"unknown schema id", testSpec, unknown, ReasonUnknownSchema, "schema id 4242 is not in the registry"},
		{"too large", Spec{MaxMessageBytes: 10, Fields: testSpec.Fields}, good, ReasonTooLarge, "exceeds the limit of 10"},
		{"missing envelope", Spec{Envelope: "data", Fields: testSpec.Fields}, good, ReasonMissingEnvelope, `envelope "data"`},
	}
	_ = id
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, mem := newTestAvroDecoder(t, tt.spec, reg.client)
			defer mem.AssertSize(t, 0)
			defer d.Release()
			rec, rej := d.Decode([]Message{{Value: tt.msg, Time: kafkaTime}})
			defer rec.Release()
			if tt.reason == "" {
				if len(rej) != 0 || rec.NumRows() != 1 {
					t.Fatalf("rows %d, rejected %v", rec.NumRows(), rej)
				}
				return
			}
			checkOne(t, rec, rej, "", tt.reason, tt.errHas)
		})
	}
}

func TestAvroDecodeMixedBatch(t *testing.T) {
	reg := newAvroRegistry(t)
	schema := avroEventSchema(tsMillis.typ, modelString.typ, `["null","double"]`, `["null","string"]`)
	msgs := []Message{
		reg.message(t, schema, avroEvent(tsMillis.val, "m", 1.0, "a")),
		reg.message(t, schema, avroEvent(tsMillis.val, "m", map[string]any{"double": 2.0}, nil)),
		{Value: []byte{0, 0}, Time: kafkaTime},
		reg.message(t, avroEventSchema(tsMillis.typ, modelString.typ, `"string"`, salString.typ), avroEvent(tsMillis.val, "m", "x", "b")),
		reg.message(t, schema, avroEvent(time.UnixMilli(1764064800000), "n", nil, "c")),
	}
	d, mem := newTestAvroDecoder(t, testSpec, reg.client)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode(msgs)
	defer rec.Release()
	want := []string{
		`2026-11-25T10:00:00Z "m" "3.2.0" 1 "a" 0.99`,
		`2026-11-25T10:00:00Z "m" "3.2.0" 2 null 0.99`,
		`2025-11-25T10:00:00Z "n" "3.2.0" null "c" 0.99`,
	}
	if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rej) != 2 || rej[0].Index != 2 || rej[0].Reason != ReasonMalformed || rej[1].Index != 3 || rej[1].Reason != ReasonWrongType {
		t.Errorf("rejected %v", rej)
	}
	for c := 0; c < int(rec.NumCols()); c++ {
		if n := rec.Column(c).Len(); n != 3 {
			t.Errorf("column %s has %d values, want 3", rec.ColumnName(c), n)
		}
	}
	if !rec.Schema().Equal(testSpec.Schema()) {
		t.Errorf("schema %s, want %s", rec.Schema(), testSpec.Schema())
	}
}

func TestAvroDecodeMapsAndMissingPaths(t *testing.T) {
	reg := newAvroRegistry(t)
	schema := `{"type":"record","name":"E","fields":[
 {"name":"features","type":{"type":"map","values":["null","double","string",{"type":"map","values":"long"}]}},
 {"name":"prediction","type":{"type":"map","values":"double"}}]}`
	msgs := []Message{
		reg.message(t, schema, map[string]any{
			"features":   map[string]any{"car_value": map[string]any{"double": 1.5}, "salary_range": map[string]any{"string": "x"}, "other": map[string]any{"map": map[string]any{"a": int64(1)}}},
			"prediction": map[string]any{"y_pred_proba": 0.25},
		}),
		reg.message(t, schema, map[string]any{"features": map[string]any{}, "prediction": map[string]any{}}),
		reg.message(t, schema, map[string]any{"features": map[string]any{"car_value": nil}, "prediction": map[string]any{"y": 1.0}}),
		reg.message(t, schema, map[string]any{"features": map[string]any{"car_value": map[string]any{"map": map[string]any{}}}, "prediction": map[string]any{}}),
	}
	d, mem := newTestAvroDecoder(t, testSpec, reg.client)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode(msgs)
	defer rec.Release()
	want := []string{
		`2026-11-25T09:00:00Z null null 1.5 "x" 0.25`,
		`2026-11-25T09:00:00Z null null null null null`,
		`2026-11-25T09:00:00Z null null null null null`,
	}
	if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rej) != 1 || rej[0].Index != 3 || rej[0].Reason != ReasonWrongType || !strings.Contains(rej[0].Err.Error(), "map in a number field") {
		t.Errorf("rejected %v", rej)
	}

	// Duplicate map keys: the last one wins, as in JSON, even over a wrong type.
	var buf bytes.Buffer
	w := avro.NewWriter(&buf, 64)
	w.WriteLong(2) // one block of two entries
	w.WriteString("car_value")
	w.WriteLong(2) // union branch string
	w.WriteString("bad")
	w.WriteString("car_value")
	w.WriteLong(1) // union branch double
	w.WriteDouble(7)
	w.WriteLong(0)
	w.WriteLong(-1) // prediction: a block of one entry with its byte size
	w.WriteLong(int64(1 + len("y_pred_proba") + 8))
	w.WriteString("y_pred_proba")
	w.WriteDouble(0.5)
	w.WriteLong(0)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rec2, rej2 := d.Decode([]Message{{Value: confluent(reg.register(t, schema), buf.Bytes()), Time: kafkaTime}})
	defer rec2.Release()
	if got := rowStrings(t, rec2); len(rej2) != 0 || len(got) != 1 || got[0] != `2026-11-25T09:00:00Z null null 7 null 0.5` {
		t.Errorf("got %q, rejected %v", got, rej2)
	}
}

func TestAvroDecodeEnvelopeAndRecursion(t *testing.T) {
	reg := newAvroRegistry(t)
	schema := `{"type":"record","name":"Cloud","fields":[
 {"name":"specversion","type":"string"},
 {"name":"data","type":["null",{"type":"record","name":"Data","fields":[
   {"name":"tree","type":{"type":"record","name":"Node","fields":[
     {"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}},
   {"name":"features","type":{"type":"record","name":"F","fields":[{"name":"car_value","type":"double"}]}}]}]}]}`
	node := func(depth int) map[string]any {
		n := map[string]any{"v": int64(depth), "next": nil}
		for i := depth - 1; i >= 0; i-- {
			n = map[string]any{"v": int64(i), "next": map[string]any{"Node": n}}
		}
		return n
	}
	spec := Spec{Envelope: "data", Fields: []Field{{Name: "car_value", Path: "features.car_value", Type: Number}}}
	d, mem := newTestAvroDecoder(t, spec, reg.client)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode([]Message{
		reg.message(t, schema, map[string]any{"specversion": "1.0", "data": map[string]any{"Data": map[string]any{"tree": node(3), "features": map[string]any{"car_value": 4.0}}}}),
		reg.message(t, schema, map[string]any{"specversion": "1.0", "data": nil}),
		reg.message(t, schema, map[string]any{"specversion": "1.0", "data": map[string]any{"Data": map[string]any{"tree": node(600), "features": map[string]any{"car_value": 4.0}}}}),
	})
	defer rec.Release()
	if got := rowStrings(t, rec); len(got) != 1 || got[0] != `2026-11-25T09:00:00Z null null 4` {
		t.Errorf("rows %q", got)
	}
	if len(rej) != 2 || rej[0].Reason != ReasonMissingEnvelope || rej[1].Reason != ReasonMalformed || !strings.Contains(rej[1].Err.Error(), "nesting too deep") {
		t.Errorf("rejected %v", rej)
	}
}

// staticRegistry serves schemas from memory, for tests and fuzzing without HTTP.
type staticRegistry map[int]sr.Schema

func (r staticRegistry) SchemaByID(_ context.Context, id int) (sr.Schema, error) {
	if s, ok := r[id]; ok {
		return s, nil
	}
	return sr.Schema{}, &sr.ResponseError{StatusCode: http.StatusNotFound, ErrorCode: 40403, Message: "Schema not found"}
}

// registryFunc adapts a function to SchemaRegistry.
type registryFunc func(ctx context.Context, id int) (sr.Schema, error)

func (f registryFunc) SchemaByID(ctx context.Context, id int) (sr.Schema, error) { return f(ctx, id) }

func TestAvroDecodeSchemaRegistry(t *testing.T) {
	reg := newAvroRegistry(t)
	schema := avroEventSchema(tsMillis.typ, modelString.typ, carDouble.typ, salString.typ)
	good := reg.message(t, schema, avroEvent(tsMillis.val, modelString.val, carDouble.val, salString.val))
	proto, _, err := reg.fake.RegisterSchema("proto-value", sr.Schema{Schema: `syntax = "proto3"; message M { int32 a = 1; }`, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	d, mem := newTestAvroDecoder(t, testSpec, reg.client)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }

	batch := []Message{good, {Value: confluent(999, good.Value[5:])}, good, {Value: confluent(999, good.Value[5:])},
		{Value: confluent(proto, good.Value[5:])}}
	for range 3 {
		rec, rej := d.Decode(batch)
		if rec.NumRows() != 2 || len(rej) != 3 || rej[0].Reason != ReasonUnknownSchema || rej[1].Reason != ReasonUnknownSchema ||
			rej[2].Reason != ReasonUnknownSchema || !strings.Contains(rej[2].Err.Error(), "PROTOBUF schema, not Avro") {
			t.Fatalf("rows %d, rejected %v", rec.NumRows(), rej)
		}
		rec.Release()
	}
	if n := reg.gets.Load(); n != 3 {
		t.Errorf("%d registry requests for 3 schema ids over 3 batches, want 3", n)
	}
	// An unknown id is asked for again after a while; a known one never.
	now = now.Add(unknownSchemaRetry)
	rec, _ := d.Decode(batch)
	rec.Release()
	if n := reg.gets.Load(); n != 4 {
		t.Errorf("%d registry requests after the retry interval, want 4", n)
	}

	// A registry that fails is retried after registryRetry, and is not asked for every
	// message in between.
	var calls int
	failing := true
	flaky := registryFunc(func(ctx context.Context, id int) (sr.Schema, error) {
		calls++
		if failing {
			return sr.Schema{}, &sr.ResponseError{StatusCode: http.StatusServiceUnavailable, Message: "unavailable"}
		}
		return reg.client.SchemaByID(ctx, id)
	})
	d2, mem2 := newTestAvroDecoder(t, testSpec, flaky)
	defer mem2.AssertSize(t, 0)
	defer d2.Release()
	d2.now = func() time.Time { return now }
	rec2, rej2 := d2.Decode([]Message{good, {Value: confluent(999, good.Value[5:])}, good})
	rec2.Release()
	if len(rej2) != 3 || rej2[0].Reason != ReasonRegistryUnavailable || rej2[1].Reason != ReasonRegistryUnavailable || calls != 1 {
		t.Fatalf("rejected %v after %d calls, want all three after one call", rej2, calls)
	}
	failing = false
	now = now.Add(registryRetry)
	rec3, rej3 := d2.Decode([]Message{good})
	rec3.Release()
	if len(rej3) != 0 || calls != 2 {
		t.Errorf("after the registry is back: rejected %v after %d calls", rej3, calls)
	}

	// A registry nobody listens on.
	down, err := sr.NewClient(sr.URLs("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	d3, mem3 := newTestAvroDecoder(t, testSpec, down)
	defer mem3.AssertSize(t, 0)
	defer d3.Release()
	rec4, rej4 := d3.Decode([]Message{good})
	rec4.Release()
	if len(rej4) != 1 || rej4[0].Reason != ReasonRegistryUnavailable || !strings.Contains(rej4[0].Err.Error(), "cannot fetch schemas from the registry") {
		t.Errorf("rejected %v", rej4)
	}

	if _, err := NewAvroDecoder(Spec{}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "at least one field") || !strings.Contains(err.Error(), "schema registry: none given") {
		t.Errorf("NewAvroDecoder(empty) = %v", err)
	}
}

func TestAvroDecodeSchemaErrors(t *testing.T) {
	regs := staticRegistry{
		1: {Schema: `{"type":"record","name":"R","fields":[{"name":"x","type":"nope"}]}`},
		2: {Schema: `{"type":"record","name":"R","fields":[]}`, References: []sr.SchemaReference{{Name: "a", Subject: "s", Version: 1}}},
		3: {Schema: `"double"`},
	}
	d, mem := newTestAvroDecoder(t, testSpec, regs)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode([]Message{{Value: confluent(1, nil)}, {Value: confluent(2, nil)}, {Value: confluent(3, make([]byte, 8)), Time: kafkaTime}})
	defer rec.Release()
	if len(rej) != 2 || !strings.Contains(rej[0].Err.Error(), "cannot parse schema id 1") || !strings.Contains(rej[1].Err.Error(), "references") {
		t.Errorf("rejected %v", rej)
	}
	// Garbage with random schema ids does not grow the cache without bound.
	for i := range maxSchemaFailures + 10 {
		r, _ := d.Decode([]Message{{Value: confluent(1000+i, nil)}})
		r.Release()
	}
	if n := len(d.programs); n > maxSchemaFailures+1 {
		t.Errorf("%d schema ids cached", n)
	}

	// A schema that is not a record has none of the paths: every field is null.
	if got := rowStrings(t, rec); len(got) != 1 || got[0] != `2026-11-25T09:00:00Z null null null null null` {
		t.Errorf("rows %q", got)
	}
}

func TestAvroDecodeRequireEventTime(t *testing.T) {
	reg := newAvroRegistry(t)
	spec := testSpec
	spec.RequireEventTime = true
	schema := avroEventSchema(`["null","long"]`, modelString.typ, carDouble.typ, salString.typ)
	d, mem := newTestAvroDecoder(t, spec, reg.client)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode([]Message{
		reg.message(t, schema, avroEvent(int64(1764064800), "m", 1.0, "a")),
		reg.message(t, schema, avroEvent(nil, "m", 1.0, "a")),
	})
	defer rec.Release()
	if rec.NumRows() != 1 || len(rej) != 1 || rej[0].Reason != ReasonBadTime || rej[0].Index != 1 {
		t.Errorf("rows %d, rejected %v", rec.NumRows(), rej)
	}
}

func TestAvroDecodeDoesNotAllocatePerRow(t *testing.T) {
	spec, msgs := benchAvroMessages(t, 1000)
	d, err := NewAvroDecoder(spec, benchAvroRegistry, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	allocs := testing.AllocsPerRun(5, func() {
		rec, rej := d.Decode(msgs)
		if len(rej) != 0 {
			t.Fatalf("rejected %v", rej[0])
		}
		rec.Release()
	})
	// The record's buffers cost a few hundred allocations per call (about 80 buffers,
	// each grown a few times); a row costs none.
	if allocs > 500 {
		t.Errorf("%.0f allocations for 1000 rows", allocs)
	}
}

// FuzzAvroDecode checks that any bytes are either a row or a rejection, never a panic or
// a leak, whatever the schema the id names.
func FuzzAvroDecode(f *testing.F) {
	reg := staticRegistry{
		1: {Schema: avroEventSchema(tsMillis.typ, modelString.typ, `["null","double","string"]`, `["null",{"type":"enum","name":"R","symbols":["LOW","HIGH"]},"string"]`)},
		2: {Schema: `{"type":"record","name":"E","fields":[
 {"name":"ts","type":["null","string","double"]},
 {"name":"features","type":{"type":"map","values":["null","double","string",{"type":"array","items":"null"},{"type":"fixed","name":"X","size":0}]}},
 {"name":"prediction","type":{"type":"record","name":"N","fields":[{"name":"y_pred_proba","type":{"type":"bytes","logicalType":"decimal","precision":40,"scale":3}},{"name":"next","type":["null","N"]}]}}]}`},
		3: {Schema: `"null"`},
	}
	for _, seed := range [][]byte{
		confluent(1, avroEncode(f, reg[1].Schema, avroEvent(tsMillis.val, "m", 1.5, map[string]any{"t.R": "HIGH"}))),
		confluent(1, avroEncode(f, reg[1].Schema, avroEvent(tsMillis.val, "m", map[string]any{"string": "NaN"}, nil))),
		confluent(2, avroEncode(f, reg[2].Schema, map[string]any{
			"ts":         map[string]any{"string": "2026-11-25T10:00:00Z"},
			"features":   map[string]any{"car_value": map[string]any{"double": 1.0}, "salary_range": map[string]any{"array": []any{nil, nil}}},
			"prediction": map[string]any{"y_pred_proba": big.NewRat(1, 3), "next": map[string]any{"N": map[string]any{"y_pred_proba": big.NewRat(2, 1), "next": nil}}},
		})),
		confluent(3, nil),
		confluent(9, nil),
		{1, 2},
		{},
	} {
		f.Add(seed)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(f, 0)
	d, err := NewAvroDecoder(testSpec, reg, mem)
	if err != nil {
		f.Fatal(err)
	}
	defer d.Release()
	goodMsg := confluent(1, avroEncode(f, reg[1].Schema, avroEvent(tsMillis.val, "m", map[string]any{"double": 2.0}, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs := []Message{
			{Value: b, Time: kafkaTime},
			{Value: goodMsg, Time: kafkaTime},
			{Value: b, Time: kafkaTime},
			{Value: goodMsg, Time: kafkaTime},
		}
		rec, rej := d.Decode(msgs)
		defer rec.Release()
		if int(rec.NumRows())+len(rej) != len(msgs) {
			t.Fatalf("%d rows + %d rejected != %d messages", rec.NumRows(), len(rej), len(msgs))
		}
		for c := 0; c < int(rec.NumCols()); c++ {
			if rec.Column(c).Len() != int(rec.NumRows()) {
				t.Fatalf("column %d has %d values for %d rows", c, rec.Column(c).Len(), rec.NumRows())
			}
		}
		switch len(rej) {
		case 0:
		case 2:
			if rej[0].Index != 0 || rej[1].Index != 2 || rej[0].Reason != rej[1].Reason || rej[0].Err == nil {
				t.Fatalf("rejections %v", rej)
			}
		default:
			t.Fatalf("the same input was decided differently: %v", rej)
		}
		if v := rec.Column(3).(*array.Float64).Value(int(rec.NumRows()) - 1); v != 2 {
			t.Fatalf("last good row lost: %v", v)
		}
	})
}

// benchAvroSchema has the shape of benchMessages: 20 numeric and 5 categorical features,
// plus fields the spec does not ask for.
func benchAvroSchema() string {
	var b strings.Builder
	b.WriteString(`{"type":"record","name":"Event","namespace":"bench","fields":[
 {"name":"event_id","type":"string"},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"model","type":"string"},
 {"name":"model_version","type":["null","string"]},
 {"name":"request","type":{"type":"record","name":"Request","fields":[
   {"name":"ip","type":"string"},{"name":"headers","type":{"type":"map","values":"string"}}]}},
 {"name":"features","type":{"type":"record","name":"Features","fields":[`)
	for j := range 20 {
		fmt.Fprintf(&b, `{"name":"num_%02d","type":["null","double"]},`, j)
	}
	for j := range 5 {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"cat_%d","type":["null","string"]}`, j)
	}
	b.WriteString(`]}},
 {"name":"prediction","type":{"type":"record","name":"Prediction","fields":[
   {"name":"y_pred_proba","type":"double"},{"name":"y_pred","type":"int"}]}}]}`)
	return b.String()
}

var benchAvroRegistry = staticRegistry{7: {Schema: benchAvroSchema()}}

// benchAvroMessages encodes the events of benchMessages as Avro.
func benchAvroMessages(t testing.TB, n int) (Spec, []Message) {
	spec, _ := benchMessages(0)
	schema := benchAvroRegistry[7].Schema
	cats := []string{"0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €", "unknown"}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	msgs := make([]Message, n)
	for i := range msgs {
		features := map[string]any{}
		for j := range 20 {
			features[fmt.Sprintf("num_%02d", j)] = rng.NormFloat64() * 1000
		}
		for j := range 5 {
			features[fmt.Sprintf("cat_%d", j)] = cats[rng.IntN(len(cats))]
		}
		ev := map[string]any{
			"event_id": fmt.Sprintf("ev-%08d", i), "ts": t0.Add(time.Duration(i) * time.Millisecond),
			"model": "car-loan", "model_version": "3.2.0",
			"request":    map[string]any{"ip": "10.0.0.1", "headers": map[string]any{"ua": "x"}},
			"features":   features,
			"prediction": map[string]any{"y_pred_proba": rng.Float64(), "y_pred": rng.IntN(2)},
		}
		msgs[i] = Message{Value: confluent(7, avroEncode(t, schema, ev)), Time: t0}
	}
	return spec, msgs
}

func BenchmarkAvroDecode(b *testing.B) {
	const batch = 1000
	spec, msgs := benchAvroMessages(b, batch)
	d, err := NewAvroDecoder(spec, benchAvroRegistry, memory.NewGoAllocator())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Release()
	size := 0
	for _, m := range msgs {
		size += len(m.Value)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	iters := 0
	for b.Loop() {
		iters++
		rec, rej := d.Decode(msgs)
		if len(rej) != 0 || rec.NumRows() != batch {
			b.Fatalf("rows %d, rejected %v", rec.NumRows(), rej)
		}
		rec.Release()
	}
	b.ReportMetric(float64(iters)*batch/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(size)/batch, "B/row")
}
