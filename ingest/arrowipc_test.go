package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// ipcColumn is one column of a test stream.
type ipcColumn struct {
	name string
	arr  arrow.Array
}

// col builds a column from its values as JSON (array.FromJSON).
func col(t testing.TB, name string, typ arrow.DataType, values string) ipcColumn {
	t.Helper()
	arr, _, err := array.FromJSON(memory.NewGoAllocator(), typ, strings.NewReader(values))
	if err != nil {
		t.Fatalf("column %s %s %s: %v", name, typ, values, err)
	}
	return ipcColumn{name, arr}
}

// dictCol builds a dictionary column from its dictionary and its indices as JSON.
func dictCol(t testing.TB, name string, index, value arrow.DataType, dict, indices string) ipcColumn {
	t.Helper()
	d := col(t, name, value, dict).arr
	idx := col(t, name, index, indices).arr
	return ipcColumn{name, array.NewDictionaryArray(&arrow.DictionaryType{IndexType: index, ValueType: value}, idx, d)}
}

// ipcRecord makes a record of cols, which must all have the same length.
func ipcRecord(cols ...ipcColumn) arrow.Record {
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.arr.DataType(), Nullable: true}
		arrs[i] = c.arr
	}
	n := int64(0)
	if len(arrs) > 0 {
		n = int64(arrs[0].Len())
	}
	return array.NewRecord(arrow.NewSchema(fields, nil), arrs, n)
}

// ipcStream writes recs (at least one, all of the first one's schema) as one IPC stream.
func ipcStream(t testing.TB, recs []arrow.Record, opts ...ipc.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(recs[0].Schema())}, opts...)...)
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatalf("write IPC: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ipcMessage(t testing.TB, cols ...ipcColumn) Message {
	t.Helper()
	return Message{Value: ipcStream(t, []arrow.Record{ipcRecord(cols...)}), Time: kafkaTime}
}

func newTestIPCDecoder(t testing.TB, spec Spec) (*ArrowIPCDecoder, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	d, err := NewArrowIPCDecoder(spec, mem)
	if err != nil {
		t.Fatalf("NewArrowIPCDecoder: %v", err)
	}
	return d, mem
}

func TestArrowIPCDecode(t *testing.T) {
	f64, str := arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String
	tsMs := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	features := arrow.StructOf(
		arrow.Field{Name: "car_value", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "salary_range", Type: str, Nullable: true})
	tests := []struct {
		name   string
		cols   func(t *testing.T) []ipcColumn
		want   []string // rendered rows: time model version car_value salary_range y_pred_proba
		reason Reason
		errHas string
	}{
		{
			name: "flat columns named by the last path segment",
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{
					col(t, "ts", tsMs, `["2026-11-25T10:00:00Z", null]`),
					col(t, "model", str, `["car-loan", "car-loan"]`),
					col(t, "model_version", str, `["3.2.0", null]`),
					col(t, "car_value", f64, `[39811, null]`),
					col(t, "salary_range", str, `["40K - 60K €", ""]`),
					col(t, "y_pred_proba", f64, `[0.99, 0.5]`),
					col(t, "unused", arrow.BinaryTypes.Binary, `["AQI=", null]`),
				}
			},
			want: []string{
				`2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "40K - 60K €" 0.99`,
				`2026-11-25T09:00:00Z "car-loan" null null "" 0.5`,
			},
		},
		{
			name: "columns named by the whole dotted path win over the last segment",
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{
					col(t, "car_value", f64, `[1]`),
					col(t, "features.car_value", f64, `[2]`),
					col(t, "prediction.y_pred_proba", f64, `[0.25]`),
				}
			},
			want: []string{`2026-11-25T09:00:00Z null null 2 null 0.25`},
		},
		{
			name: "struct columns; a null struct makes its fields null",
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{
					col(t, "features", features, `[{"car_value": 7, "salary_range": "a"}, null, {"car_value": null, "salary_range": "c"}]`),
					col(t, "prediction", arrow.StructOf(arrow.Field{Name: "y_pred_proba", Type: f64, Nullable: true}), `[{"y_pred_proba": 0.1}, {"y_pred_proba": 0.2}, null]`),
				}
			},
			want: []string{
				`2026-11-25T09:00:00Z null null 7 "a" 0.1`,
				`2026-11-25T09:00:00Z null null null null 0.2`,
				`2026-11-25T09:00:00Z null null null "c" null`,
			},
		},
		{
			name: "dictionary columns",
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{
					dictCol(t, "salary_range", arrow.PrimitiveTypes.Int8, str, `["low", "high"]`, `[1, 0, null, 1]`),
					dictCol(t, "car_value", arrow.PrimitiveTypes.Uint16, arrow.PrimitiveTypes.Int64, `[10, 20, null]`, `[0, 2, 1, 1]`),
					dictCol(t, "model", arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Float64, `[1.5]`, `[0, 0, 0, 0]`),
				}
			},
			want: []string{
				`2026-11-25T09:00:00Z "1.5" null 10 "high" null`,
				`2026-11-25T09:00:00Z "1.5" null null "low" null`,
				`2026-11-25T09:00:00Z "1.5" null 20 null null`,
				`2026-11-25T09:00:00Z "1.5" null 20 "high" null`,
			},
		},
		{
			name: "missing columns are null",
			cols: func(t *testing.T) []ipcColumn { return []ipcColumn{col(t, "other", f64, `[1, 2]`)} },
			want: []string{`2026-11-25T09:00:00Z null null null null null`, `2026-11-25T09:00:00Z null null null null null`},
		},

		// Rejections.
		{name: "string column in a number field", reason: ReasonWrongType, errHas: `"features.car_value": column of type utf8 cannot be a number`,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "car_value", str, `["1", "2"]`), col(t, "y_pred_proba", f64, `[1, 2]`)}
			}},
		{name: "binary column in a string field", reason: ReasonWrongType, errHas: `"features.salary_range": column of type binary`,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "salary_range", arrow.BinaryTypes.Binary, `["YQ=="]`)}
			}},
		{name: "list column in a number field", reason: ReasonWrongType,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "car_value", arrow.ListOf(f64), `[[1]]`)}
			}},
		{name: "struct column in a string field", reason: ReasonWrongType, errHas: `"model"`,
			cols: func(t *testing.T) []ipcColumn { return []ipcColumn{col(t, "model", features, `[null]`)} }},
		{name: "timestamp column in a number field", reason: ReasonWrongType,
			cols: func(t *testing.T) []ipcColumn { return []ipcColumn{col(t, "car_value", tsMs, `[0]`)} }},
		{name: "dictionary of binary", reason: ReasonWrongType,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{dictCol(t, "salary_range", arrow.PrimitiveTypes.Int8, arrow.BinaryTypes.Binary, `["YQ=="]`, `[0]`)}
			}},
		{name: "boolean event time", reason: ReasonBadTime, errHas: `"ts": column of type bool cannot be a time`,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "ts", arrow.FixedWidthTypes.Boolean, `[true]`)}
			}},
		{name: "one bad time rejects the whole message", reason: ReasonBadTime, errHas: `"ts": row 1: not a time`,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "ts", str, `["2026-11-25T10:00:00Z", "yesterday", "2026-11-25T10:00:00Z"]`), col(t, "car_value", f64, `[1, 2, 3]`)}
			}},
		{name: "timestamp in seconds beyond 2262", reason: ReasonBadTime,
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{col(t, "ts", &arrow.TimestampType{Unit: arrow.Second}, `[10000000000]`)}
			}},
		{name: "invalid UTF-8", reason: ReasonMalformed, errHas: `"features.salary_range": row 0: string is not valid UTF-8`,
			cols: func(t *testing.T) []ipcColumn {
				b := array.NewStringBuilder(memory.NewGoAllocator())
				b.Append("\xff")
				return []ipcColumn{{"salary_range", b.NewArray()}}
			}},
		{name: "dictionary index out of range", reason: ReasonMalformed, errHas: "dictionary index out of range",
			cols: func(t *testing.T) []ipcColumn {
				return []ipcColumn{dictCol(t, "salary_range", arrow.PrimitiveTypes.Int8, str, `["a"]`, `[0, 5]`)}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, mem := newTestIPCDecoder(t, testSpec)
			defer mem.AssertSize(t, 0)
			defer d.Release()
			rec, rej := d.Decode([]Message{ipcMessage(t, tt.cols(t)...)})
			defer rec.Release()
			if tt.reason != "" {
				if rec.NumRows() != 0 || len(rej) != 1 {
					t.Fatalf("want one rejection, got %d rows %v", rec.NumRows(), rej)
				}
				if rej[0].Reason != tt.reason || !strings.Contains(rej[0].Err.Error(), tt.errHas) {
					t.Errorf("rejected as %s (%v), want %s with %q", rej[0].Reason, rej[0].Err, tt.reason, tt.errHas)
				}
				return
			}
			if len(rej) != 0 {
				t.Fatalf("rejected: %s: %v", rej[0].Reason, rej[0].Err)
			}
			if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestArrowIPCDecodeTypes checks the conversion of every supported column type, one
// type per message.
func TestArrowIPCDecodeTypes(t *testing.T) {
	spec := Spec{EventTime: "t", Fields: []Field{{Name: "n", Path: "n", Type: Number}, {Name: "s", Path: "s", Type: String}}}
	tests := []struct {
		typ     arrow.DataType
		values  string
		n, s, t string // the column as a number, a string, an event time: rendered rows joined by "|"
	}{
		{arrow.PrimitiveTypes.Int8, `[-7, null]`, "-7|null", `"-7"|null`, "1969-12-31T23:59:53Z|2026-11-25T09:00:00Z"},
		{arrow.PrimitiveTypes.Int16, `[300]`, "300", `"300"`, "1970-01-01T00:05:00Z"},
		{arrow.PrimitiveTypes.Int32, `[1764064800]`, "1.7640648e+09", `"1764064800"`, "2025-11-25T10:00:00Z"},
		{arrow.PrimitiveTypes.Int64, `[1764064800123]`, "1.764064800123e+12", `"1764064800123"`, "2025-11-25T10:00:00.123Z"},
		{arrow.PrimitiveTypes.Uint8, `[255]`, "255", `"255"`, "1970-01-01T00:04:15Z"},
		{arrow.PrimitiveTypes.Uint16, `[65535]`, "65535", `"65535"`, "1970-01-01T18:12:15Z"},
		{arrow.PrimitiveTypes.Uint32, `[4294967295]`, "4.294967295e+09", `"4294967295"`, "2106-02-07T06:28:15Z"},
		{arrow.PrimitiveTypes.Uint64, `[1764064800123456]`, "1.764064800123456e+15", `"1764064800123456"`, "2025-11-25T10:00:00.123456Z"},
		{arrow.PrimitiveTypes.Float32, `[0.1]`, "0.1", `"0.1"`, "1970-01-01T00:00:00.1Z"},
		{arrow.FixedWidthTypes.Float16, `[1.5]`, "1.5", `"1.5"`, "1970-01-01T00:00:01.5Z"},
		{arrow.PrimitiveTypes.Float64, `[1764064800.25]`, "1.76406480025e+09", `"1764064800.25"`, "2025-11-25T10:00:00.25Z"},
		{arrow.PrimitiveTypes.Float64, `[3]`, "3", `"3"`, "1970-01-01T00:00:03Z"},
		{arrow.FixedWidthTypes.Boolean, `[true, false]`, "1|0", `"true"|"false"`, ""},
		{&arrow.Decimal128Type{Precision: 10, Scale: 2}, `["-123.40"]`, "-123.4", `"-123.4"`, ""},
		{&arrow.Decimal256Type{Precision: 40, Scale: 0}, `["12345678901234567890"]`, "1.2345678901234567e+19", `"12345678901234567890"`, ""},
		{arrow.BinaryTypes.String, `["2026-11-25T10:00:00Z", "NaN"]`, "", `"2026-11-25T10:00:00Z"|"NaN"`, ""},
		{arrow.BinaryTypes.LargeString, `["2026-11-25T10:00:00"]`, "", `"2026-11-25T10:00:00"`, "2026-11-25T10:00:00Z"},
		{arrow.BinaryTypes.StringView, `["a-string-longer-than-twelve-bytes", "short"]`, "", `"a-string-longer-than-twelve-bytes"|"short"`, ""},
		{&arrow.TimestampType{Unit: arrow.Second, TimeZone: "Europe/Paris"}, `[1764064800]`, "", "", "2025-11-25T10:00:00Z"},
		{&arrow.TimestampType{Unit: arrow.Microsecond}, `[1764064800123456]`, "", "", "2025-11-25T10:00:00.123456Z"},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, `["2025-11-25T10:00:00.123456789Z"]`, "", "", "2025-11-25T10:00:00.123456789Z"},
		{arrow.FixedWidthTypes.Date32, `[20417]`, "", "", "2025-11-25T00:00:00Z"},
		{arrow.FixedWidthTypes.Date64, `[1764028800000]`, "", "", "2025-11-25T00:00:00Z"},
		{arrow.Null, `[null]`, "null", "null", "2026-11-25T09:00:00Z"},
	}
	for _, tt := range tests {
		for _, target := range []struct{ name, want string }{{"n", tt.n}, {"s", tt.s}, {"t", tt.t}} {
			t.Run(fmt.Sprintf("%s %s as %s", tt.typ, tt.values, target.name), func(t *testing.T) {
				d, mem := newTestIPCDecoder(t, spec)
				defer mem.AssertSize(t, 0)
				defer d.Release()
				rec, rej := d.Decode([]Message{ipcMessage(t, col(t, target.name, tt.typ, tt.values))})
				defer rec.Release()
				if target.want == "" {
					if len(rej) != 1 || (rej[0].Reason != ReasonWrongType && rej[0].Reason != ReasonBadTime) {
						t.Fatalf("want wrong_type or bad_time, got %d rows %v", rec.NumRows(), rej)
					}
					return
				}
				if len(rej) != 0 {
					t.Fatalf("rejected: %v", rej[0].Err)
				}
				c := map[string]int{"t": 0, "n": 3, "s": 4}[target.name]
				var got []string
				for _, row := range rowStrings(t, rec) {
					got = append(got, strings.Fields(row)[c])
				}
				if strings.Join(got, "|") != target.want {
					t.Errorf("got %s, want %s", strings.Join(got, "|"), target.want)
				}
			})
		}
	}
}

func TestArrowIPCDecodeMessages(t *testing.T) {
	f64 := arrow.PrimitiveTypes.Float64
	batch := func(values string) arrow.Record { return ipcRecord(col(t, "car_value", f64, values)) }
	multi := ipcStream(t, []arrow.Record{batch(`[1, 2]`), batch(`[]`), batch(`[3]`)})
	lz4 := ipcStream(t, []arrow.Record{batch(`[4, 5]`)}, ipc.WithLZ4())
	zstd := ipcStream(t, []arrow.Record{batch(`[6]`)}, ipc.WithZstd())
	schemaOnly := func() []byte {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(batch(`[]`).Schema()))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	noEOS := multi[:len(multi)-8]
	if !bytes.Equal(multi[len(multi)-8:], []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) {
		t.Fatalf("stream does not end with the end-of-stream marker: % x", multi[len(multi)-8:])
	}
	corrupt := append([]byte(nil), multi...)
	for i := 8; i < 40 && i < len(corrupt); i++ {
		corrupt[i] ^= 0x5a
	}

	d, mem := newTestIPCDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	msgs := []Message{
		{Value: multi}, {Value: lz4}, {Value: schemaOnly}, {Value: noEOS},
		{Value: nil}, {Value: []byte("garbage!")}, {Value: multi[:len(multi)-20]}, {Value: append(append([]byte(nil), multi...), 1)},
		{Value: corrupt}, {Value: zstd}, {Value: []byte(`{"features":{"car_value":1}}`)},
	}
	rec, rej := d.Decode(msgs)
	defer rec.Release()
	var got []string
	for _, r := range rowStrings(t, rec) {
		got = append(got, strings.Fields(r)[3])
	}
	if want := "1 2 3 4 5 1 2 3 6"; strings.Join(got, " ") != want {
		t.Errorf("car_value %s, want %s", strings.Join(got, " "), want)
	}
	wantRej := map[int]string{4: "no schema message", 5: "", 6: "", 7: "1 bytes after the end-of-stream marker", 8: "", 10: ""}
	if len(rej) != len(wantRej) {
		t.Fatalf("rejected %v", rej)
	}
	for _, r := range rej {
		errHas, ok := wantRej[r.Index]
		if !ok || r.Reason != ReasonMalformed || !strings.Contains(r.Err.Error(), errHas) {
			t.Errorf("message %d rejected as %s: %v", r.Index, r.Reason, r.Err)
		}
	}

	// A batch of ten million rows of a type that takes no bytes.
	nulls := ipcMessage(t, ipcColumn{"car_value", array.NewNull(10_000_000)})
	rec3, rej3 := d.Decode([]Message{nulls})
	defer rec3.Release()
	if len(rej3) != 1 || rej3[0].Reason != ReasonMalformed || !strings.Contains(rej3[0].Err.Error(), "more than a message may hold") {
		t.Errorf("rows %d, rejected %v", rec3.NumRows(), rej3)
	}

	// Too large, and a required event time that is null in one row.
	spec := testSpec
	spec.MaxMessageBytes = len(multi) - 1
	spec.RequireEventTime = true
	d2, mem2 := newTestIPCDecoder(t, spec)
	defer mem2.AssertSize(t, 0)
	defer d2.Release()
	rec2, rej2 := d2.Decode([]Message{{Value: multi}, ipcMessage(t, col(t, "ts", arrow.PrimitiveTypes.Int64, `[1764064800, null]`))})
	defer rec2.Release()
	if rec2.NumRows() != 0 || len(rej2) != 2 || rej2[0].Reason != ReasonTooLarge || rej2[1].Reason != ReasonBadTime ||
		!strings.Contains(rej2[1].Err.Error(), "row 1: event time is null") {
		t.Errorf("rows %d, rejected %v", rec2.NumRows(), rej2)
	}

	if _, err := NewArrowIPCDecoder(Spec{}, nil); err == nil || !strings.HasPrefix(err.Error(), "cannot create Arrow IPC decoder: ") {
		t.Errorf("NewArrowIPCDecoder(empty) = %v", err)
	}
}

// TestArrowIPCDecodePyArrowStreams decodes streams written by pyarrow
// (testdata/ipc/gen_pyarrow.py): another implementation's flatbuffers, dictionaries,
// string views, compression and time zones.
func TestArrowIPCDecodePyArrowStreams(t *testing.T) {
	nested := []string{
		`2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "40K - 60K €" 0.99`,
		`2026-11-25T09:00:00Z "car-loan" null null null 0.5`,
		`2026-11-25T10:00:01.5Z null "3.3.0" null "20K - 40K €" null`,
	}
	for _, tt := range []struct {
		file string
		want []string
	}{
		{"pyarrow_nested.arrows", append(nested, nested[1])},
		{"pyarrow_nested_zstd.arrows", nested},
		{"pyarrow_nested_lz4.arrows", nested},
		{"pyarrow_flat.arrows", []string{
			`2025-11-25T10:00:00Z "car-loan" null 39811 "true" 0.25`,
			`2025-11-25T10:00:01Z "car-loan" null -3 "false" null`,
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b := fixture(t, tt.file)
			d, mem := newTestIPCDecoder(t, testSpec)
			defer mem.AssertSize(t, 0)
			defer d.Release()
			rec, rej := d.Decode([]Message{{Value: b, Time: kafkaTime}})
			defer rec.Release()
			if len(rej) != 0 {
				t.Fatalf("rejected: %v", rej[0].Err)
			}
			if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestArrowIPCDecodeEnvelope(t *testing.T) {
	spec := testSpec
	spec.Envelope = "data"
	d, mem := newTestIPCDecoder(t, spec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	data := arrow.StructOf(arrow.Field{Name: "features", Type: arrow.StructOf(
		arrow.Field{Name: "car_value", Type: arrow.PrimitiveTypes.Float64, Nullable: true}), Nullable: true})
	rec, rej := d.Decode([]Message{
		ipcMessage(t, col(t, "data", data, `[{"features": {"car_value": 1}}]`)),
		ipcMessage(t, col(t, "data.features.car_value", arrow.PrimitiveTypes.Float64, `[2]`)),
		ipcMessage(t, col(t, "car_value", arrow.PrimitiveTypes.Float64, `[3]`)),
		ipcMessage(t, col(t, "features.car_value", arrow.PrimitiveTypes.Float64, `[4]`)),
	})
	defer rec.Release()
	var got []string
	for _, r := range rowStrings(t, rec) {
		got = append(got, strings.Fields(r)[3])
	}
	// features.car_value without the envelope prefix is not a rule; its last segment is.
	if len(rej) != 0 || strings.Join(got, " ") != "1 2 3 null" {
		t.Errorf("car_value %v, rejected %v", got, rej)
	}
}

func TestCheckIPCFraming(t *testing.T) {
	good := ipcStream(t, []arrow.Record{ipcRecord(col(t, "x", arrow.PrimitiveTypes.Int64, `[1]`))})
	// A body length of 1 TiB in the record batch's metadata, which the IPC reader would
	// try to allocate.
	huge := append([]byte(nil), good...)
	schemaLen := int(binary.LittleEndian.Uint32(huge[4:]))
	batchMeta := huge[8+schemaLen+8:]
	table := binary.LittleEndian.Uint32(batchMeta)
	vtable := int64(table) - int64(int32(binary.LittleEndian.Uint32(batchMeta[table:])))
	off := binary.LittleEndian.Uint16(batchMeta[vtable+10:])
	binary.LittleEndian.PutUint64(batchMeta[int64(table)+int64(off):], 1<<40)

	for _, tt := range []struct {
		name   string
		b      []byte
		errHas string
	}{
		{"valid", good, ""},
		{"legacy framing without continuation markers", legacyFraming(t, good), ""},
		{"empty", nil, "no schema message"},
		{"end of stream only", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, "no schema message"},
		{"short prefix", []byte{0xff, 0xff}, "truncated message prefix"},
		{"short length", []byte{0xff, 0xff, 0xff, 0xff, 1}, "truncated message length"},
		{"negative metadata length", []byte{0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff}, "metadata length -16"},
		{"metadata beyond the end", []byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00}, "exceeds the message"},
		{"metadata too short for a flatbuffer", []byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0}, "corrupt message metadata"},
		{"root table beyond the metadata", []byte{0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 0xf0, 0, 0, 0, 0, 0, 0, 0}, "corrupt message metadata"},
		{"body beyond the end", huge, "body length 1099511627776"},
		// Found by FuzzArrowIPCDecode: a schema whose fields vector claims billions of
		// entries, which the IPC reader would make() before failing: out of memory.
		{"vector length beyond the metadata", withFieldsLength(t, good, 1<<30), "corrupt message metadata at byte 8"},
		{"vector length within the metadata", withFieldsLength(t, good, 1), ""},
		// Found by FuzzArrowIPCDecode: a vtable entry that starts within the vtable and
		// ends after it; the Go runtime reads it, so the check must too.
		{"vtable entry across the vtable's end", fixture(t, "fuzz_vtable_entry.arrows"), "corrupt message metadata"},
		{"trailing data", append(append([]byte(nil), good...), 0, 0), "2 bytes after the end-of-stream marker"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkIPCFraming(tt.b)
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("err %v, want %q", err, tt.errHas)
			}
		})
	}
}

// withFieldsLength returns a copy of the stream b whose schema claims n fields.
func withFieldsLength(t *testing.T, b []byte, n uint32) []byte {
	t.Helper()
	b = append([]byte(nil), b...)
	meta := b[8 : 8+binary.LittleEndian.Uint32(b[4:])]
	// Message (root table) → header (field 2, the Schema table) → fields (field 1).
	field := func(table uint32, id int) uint32 {
		vtable := uint32(int32(table) - int32(binary.LittleEndian.Uint32(meta[table:])))
		off := binary.LittleEndian.Uint16(meta[vtable+4+2*uint32(id):])
		if off == 0 {
			t.Fatalf("field %d absent", id)
		}
		return table + uint32(off)
	}
	ref := func(p uint32) uint32 { return p + binary.LittleEndian.Uint32(meta[p:]) }
	schema := ref(field(binary.LittleEndian.Uint32(meta), 2))
	fields := ref(field(schema, 1))
	if got := binary.LittleEndian.Uint32(meta[fields:]); got != 1 {
		t.Fatalf("schema has %d fields, want 1", got)
	}
	binary.LittleEndian.PutUint32(meta[fields:], n)
	return b
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ipc", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyFraming rewrites a stream in the framing before Arrow 0.15: no continuation
// markers.
func legacyFraming(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(b); {
		metaLen := int(binary.LittleEndian.Uint32(b[i+4:]))
		if metaLen == 0 {
			return append(out, 0, 0, 0, 0)
		}
		body, ok := verifyIPCMetadata(b[i+8 : i+8+metaLen])
		if !ok {
			t.Fatal("corrupt test stream")
		}
		out = append(out, b[i+4:i+8+metaLen+int(body)]...)
		i += 8 + metaLen + int(body)
	}
	return out
}

// TestArrowIPCDecodeMemoryBudget feeds a compressed message whose buffer claims to
// decompress to 1 TiB: the reader must fail within the budget, not allocate it.
func TestArrowIPCDecodeMemoryBudget(t *testing.T) {
	b := ipcStream(t, []arrow.Record{ipcRecord(col(t, "car_value", arrow.PrimitiveTypes.Float64, `[1, 2, 3, 4, 5, 6, 7, 8]`))}, ipc.WithLZ4())
	schemaLen := int(binary.LittleEndian.Uint32(b[4:]))
	batch := 8 + schemaLen
	body := b[batch+8+int(binary.LittleEndian.Uint32(b[batch+4:])):]
	// The body starts with the values buffer (there is no validity bitmap), prefixed by
	// its uncompressed length: 8 float64s.
	if n := binary.LittleEndian.Uint64(body); n != 64 {
		t.Fatalf("uncompressed length %d, want 64: the writer's layout changed", n)
	}
	binary.LittleEndian.PutUint64(body, 1<<40)

	d, mem := newTestIPCDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode([]Message{{Value: b}})
	defer rec.Release()
	if len(rej) != 1 || rej[0].Reason != ReasonMalformed || !strings.Contains(rej[0].Err.Error(), "memory budget") {
		t.Errorf("rows %d, rejected %v", rec.NumRows(), rej)
	}
}

// logicalEvent is one inference event, encoded as JSON, Avro and Arrow IPC by
// TestJSONAvroIPCDecodeTheSame.
type logicalEvent struct {
	ts              *time.Time
	model, version  *string
	carValue, proba *float64
	salaryRange     *string
	featuresNull    bool
}

func randomEvents(n int) []logicalEvent {
	rng := rand.New(rand.NewPCG(3, 4))
	some := func() bool { return rng.IntN(5) != 0 }
	strs := []string{"car-loan", "", "40K - 60K €", "é€😀", "a\"b\\c\n", "0", "true"}
	nums := []float64{0, -0.0, 1, -1.5, 39811, 0.1, 1e-7, 1e21, -12345678.125, math.MaxFloat64, math.SmallestNonzeroFloat64}
	events := make([]logicalEvent, n)
	for i := range events {
		e := &events[i]
		if some() {
			ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(1e15)) * time.Microsecond)
			e.ts = &ts
		}
		if some() {
			e.model = &strs[rng.IntN(len(strs))]
		}
		if some() {
			e.version = &strs[rng.IntN(len(strs))]
		}
		if some() {
			v := nums[rng.IntN(len(nums))]
			if rng.IntN(2) == 0 {
				v = rng.NormFloat64() * 1000
			}
			e.carValue = &v
		}
		if some() {
			e.salaryRange = &strs[rng.IntN(len(strs))]
		}
		if some() {
			v := rng.Float64()
			e.proba = &v
		}
		e.featuresNull = rng.IntN(10) == 0
	}
	return events
}

func (e logicalEvent) json(t testing.TB) []byte {
	m := map[string]any{}
	if e.ts != nil {
		m["ts"] = e.ts.Format(time.RFC3339Nano)
	}
	if e.model != nil {
		m["model"] = *e.model
	}
	if e.version != nil {
		m["model_version"] = *e.version
	}
	if !e.featuresNull {
		f := map[string]any{}
		if e.carValue != nil {
			f["car_value"] = *e.carValue
		}
		if e.salaryRange != nil {
			f["salary_range"] = *e.salaryRange
		}
		m["features"] = f
	} else {
		m["features"] = nil
	}
	if e.proba != nil {
		m["prediction"] = map[string]any{"y_pred_proba": *e.proba}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const logicalAvroSchema = `{"type":"record","name":"Event","namespace":"same","fields":[
 {"name":"ts","type":["null",{"type":"long","logicalType":"timestamp-micros"}]},
 {"name":"model","type":["null","string"]},
 {"name":"model_version","type":["null","string"]},
 {"name":"features","type":["null",{"type":"record","name":"Features","fields":[
   {"name":"car_value","type":["null","double"]},
   {"name":"salary_range","type":["null","string"]}]}]},
 {"name":"prediction","type":["null",{"type":"record","name":"Prediction","fields":[
   {"name":"y_pred_proba","type":"double"}]}]}]}`

func (e logicalEvent) avro(t testing.TB) []byte {
	opt := func(v any, ok bool) any {
		if !ok {
			return nil
		}
		return v
	}
	m := map[string]any{
		"ts":            nil,
		"model":         opt(ptrString(e.model), e.model != nil),
		"model_version": opt(ptrString(e.version), e.version != nil),
		"features":      nil,
		"prediction":    nil,
	}
	if e.ts != nil {
		m["ts"] = map[string]any{"long.timestamp-micros": *e.ts}
	}
	if !e.featuresNull {
		f := map[string]any{"car_value": nil, "salary_range": opt(ptrString(e.salaryRange), e.salaryRange != nil)}
		if e.carValue != nil {
			f["car_value"] = map[string]any{"double": *e.carValue}
		}
		m["features"] = map[string]any{"same.Features": f}
	}
	if e.proba != nil {
		m["prediction"] = map[string]any{"same.Prediction": map[string]any{"y_pred_proba": *e.proba}}
	}
	return confluent(1, avroEncode(t, logicalAvroSchema, m))
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// logicalIPC builds the events as one record with struct columns, or, flat, with the
// columns named by the last path segment.
func logicalIPC(events []logicalEvent, flat bool) arrow.Record {
	mem := memory.NewGoAllocator()
	featuresType := arrow.StructOf(
		arrow.Field{Name: "car_value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "salary_range", Type: arrow.BinaryTypes.String, Nullable: true})
	predictionType := arrow.StructOf(arrow.Field{Name: "y_pred_proba", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	model, version := array.NewStringBuilder(mem), array.NewStringBuilder(mem)
	features := array.NewStructBuilder(mem, featuresType)
	car := features.FieldBuilder(0).(*array.Float64Builder)
	sal := features.FieldBuilder(1).(*array.StringBuilder)
	prediction := array.NewStructBuilder(mem, predictionType)
	proba := prediction.FieldBuilder(0).(*array.Float64Builder)
	appendStr := func(b *array.StringBuilder, p *string) {
		if p == nil {
			b.AppendNull()
		} else {
			b.Append(*p)
		}
	}
	appendNum := func(b *array.Float64Builder, p *float64) {
		if p == nil {
			b.AppendNull()
		} else {
			b.Append(*p)
		}
	}
	for _, e := range events {
		if e.ts == nil {
			ts.AppendNull()
		} else {
			ts.Append(arrow.Timestamp(e.ts.UnixMicro()))
		}
		appendStr(model, e.model)
		appendStr(version, e.version)
		// A null struct gets null fields from StructBuilder.Append(false).
		switch {
		case e.featuresNull && !flat:
			features.Append(false)
		case e.featuresNull:
			features.Append(true)
			car.AppendNull()
			sal.AppendNull()
		default:
			features.Append(true)
			appendNum(car, e.carValue)
			appendStr(sal, e.salaryRange)
		}
		prediction.Append(e.proba != nil)
		if e.proba != nil {
			proba.Append(*e.proba)
		}
	}
	cols := []ipcColumn{{"ts", ts.NewArray()}, {"model", model.NewArray()}, {"model_version", version.NewArray()}}
	if !flat {
		cols = append(cols, ipcColumn{"features", features.NewArray()}, ipcColumn{"prediction", prediction.NewArray()})
		return ipcRecord(cols...)
	}
	f, p := features.NewArray().(*array.Struct), prediction.NewArray().(*array.Struct)
	// Flattening keeps the struct's own nulls out: the fields are what they are.
	cols = append(cols, ipcColumn{"car_value", f.Field(0)}, ipcColumn{"salary_range", f.Field(1)}, ipcColumn{"y_pred_proba", p.Field(0)})
	return ipcRecord(cols...)
}

// TestJSONAvroIPCDecodeTheSame is the foundation of "the same findings as the same data
// in JSON": the same events, encoded as JSON, as Avro and as Arrow IPC (one message per
// event, or all in one message; struct or flat columns) decode to equal records.
func TestJSONAvroIPCDecodeTheSame(t *testing.T) {
	events := randomEvents(500)
	jsonMsgs := make([]Message, len(events))
	avroMsgs := make([]Message, len(events))
	ipcMsgs := make([]Message, len(events))
	for i, e := range events {
		jsonMsgs[i] = Message{Value: e.json(t), Time: kafkaTime}
		avroMsgs[i] = Message{Value: e.avro(t), Time: kafkaTime}
		ipcMsgs[i] = Message{Value: ipcStream(t, []arrow.Record{logicalIPC(events[i:i+1], false)}), Time: kafkaTime}
	}
	// All events in one message of several batches, flat and nested.
	var nested, flat []arrow.Record
	for i := 0; i < len(events); i += 100 {
		nested = append(nested, logicalIPC(events[i:i+100], false))
		flat = append(flat, logicalIPC(events[i:i+100], true))
	}
	batched := []Message{{Value: ipcStream(t, nested), Time: kafkaTime}}
	flatBatched := []Message{{Value: ipcStream(t, flat), Time: kafkaTime}}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	jd, err := NewJSONDecoder(testSpec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer jd.Release()
	ad, err := NewAvroDecoder(testSpec, staticRegistry{1: {Schema: logicalAvroSchema}}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Release()
	id, err := NewArrowIPCDecoder(testSpec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer id.Release()

	want, rej := jd.Decode(jsonMsgs)
	defer want.Release()
	if len(rej) != 0 || want.NumRows() != int64(len(events)) {
		t.Fatalf("JSON: %d rows, rejected %v", want.NumRows(), rej)
	}
	for _, c := range []struct {
		name string
		dec  interface {
			Decode([]Message) (arrow.Record, []Rejected)
		}
		msgs []Message
	}{
		{"Avro", ad, avroMsgs},
		{"IPC, one event per message", id, ipcMsgs},
		{"IPC, all events in one message", id, batched},
		{"IPC, flat columns", id, flatBatched},
	} {
		got, rej := c.dec.Decode(c.msgs)
		if len(rej) != 0 {
			t.Errorf("%s: rejected %v", c.name, rej[0])
		}
		if !array.RecordEqual(got, want) {
			g, w := rowStrings(t, got), rowStrings(t, want)
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("%s: row %d:\ngot  %s\nwant %s\n(JSON %s)", c.name, i, g[i], w[i], jsonMsgs[i].Value)
					break
				}
			}
			if len(g) != len(w) {
				t.Errorf("%s: %d rows, want %d", c.name, len(g), len(w))
			}
		}
		got.Release()
	}
}

// FuzzArrowIPCDecode checks that any bytes are either rows or a rejection, never a panic
// or a leak, and that a message is decided the same way wherever it is in a batch.
func FuzzArrowIPCDecode(f *testing.F) {
	events := randomEvents(20)
	f.Add(ipcStream(f, []arrow.Record{logicalIPC(events[:10], false), logicalIPC(events[10:], false)}))
	f.Add(ipcStream(f, []arrow.Record{logicalIPC(events[:3], true)}, ipc.WithLZ4()))
	f.Add(ipcStream(f, []arrow.Record{logicalIPC(events[:3], true)}, ipc.WithZstd()))
	f.Add(ipcStream(f, []arrow.Record{ipcRecord(
		dictCol(f, "salary_range", arrow.PrimitiveTypes.Int8, arrow.BinaryTypes.String, `["low", "high"]`, `[1, 0, null]`),
		col(f, "car_value", arrow.PrimitiveTypes.Int16, `[1, null, 3]`),
		col(f, "ts", arrow.BinaryTypes.String, `["2026-11-25T10:00:00Z", null, "1764064800"]`),
		col(f, "model", arrow.BinaryTypes.StringView, `["a string longer than twelve bytes", null, "x"]`))}))
	f.Add([]byte{})
	f.Add([]byte("garbage!"))
	pyarrow, _ := filepath.Glob(filepath.Join("testdata", "ipc", "*.arrows"))
	for _, name := range pyarrow {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(f, 0)
	d, err := NewArrowIPCDecoder(testSpec, mem)
	if err != nil {
		f.Fatal(err)
	}
	defer d.Release()
	good := ipcMessage(f, col(f, "car_value", arrow.PrimitiveTypes.Float64, `[1, 2]`)).Value
	f.Fuzz(func(t *testing.T, b []byte) {
		alone, rejAlone := d.Decode([]Message{{Value: b, Time: kafkaTime}})
		n := int(alone.NumRows())
		alone.Release()
		if len(rejAlone) > 1 || (len(rejAlone) == 1 && n != 0) {
			t.Fatalf("%d rows and rejections %v for one message", n, rejAlone)
		}
		msgs := []Message{{Value: good}, {Value: b, Time: kafkaTime}, {Value: good}, {Value: b, Time: kafkaTime}}
		rec, rej := d.Decode(msgs)
		defer rec.Release()
		for c := 0; c < int(rec.NumCols()); c++ {
			if rec.Column(c).Len() != int(rec.NumRows()) {
				t.Fatalf("column %d has %d values for %d rows", c, rec.Column(c).Len(), rec.NumRows())
			}
		}
		if len(rej) != 2*len(rejAlone) || int(rec.NumRows()) != 4+2*n {
			t.Fatalf("in a batch: %d rows, rejected %v; alone: %d rows, rejected %v", rec.NumRows(), rej, n, rejAlone)
		}
		for _, r := range rej {
			if r.Index != 1 && r.Index != 3 || r.Reason != rejAlone[0].Reason {
				t.Fatalf("rejections %v, alone %v", rej, rejAlone)
			}
		}
	})
}

// benchIPCMessages encodes the events of benchMessages as IPC streams of rowsPerMessage
// rows each, with the columns flat as a batching producer would write them.
func benchIPCMessages(b *testing.B, messages, rowsPerMessage int) (Spec, []Message) {
	spec, _ := benchMessages(0)
	cats := []string{"0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €", "unknown"}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	mem := memory.NewGoAllocator()
	fields := []arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "model", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String, Nullable: true},
	}
	for j := range 20 {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("num_%02d", j), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	for j := range 5 {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("cat_%d", j), Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields, arrow.Field{Name: "y_pred_proba", Type: arrow.PrimitiveTypes.Float64})
	schema := arrow.NewSchema(fields, nil)
	msgs := make([]Message, messages)
	row := 0
	for i := range msgs {
		rb := array.NewRecordBuilder(mem, schema)
		for range rowsPerMessage {
			rb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("ev-%08d", row))
			rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(row) * time.Millisecond).UnixMicro()))
			rb.Field(2).(*array.StringBuilder).Append("car-loan")
			rb.Field(3).(*array.StringBuilder).Append("3.2.0")
			for j := range 20 {
				rb.Field(4 + j).(*array.Float64Builder).Append(rng.NormFloat64() * 1000)
			}
			for j := range 5 {
				rb.Field(24 + j).(*array.StringBuilder).Append(cats[rng.IntN(len(cats))])
			}
			rb.Field(29).(*array.Float64Builder).Append(rng.Float64())
			row++
		}
		rec := rb.NewRecord()
		msgs[i] = Message{Value: ipcStream(b, []arrow.Record{rec}), Time: t0}
		rec.Release()
		rb.Release()
	}
	return spec, msgs
}

func BenchmarkArrowIPCDecode(b *testing.B) {
	for _, rowsPerMessage := range []int{1, 1000} {
		b.Run(fmt.Sprintf("rows_per_message=%d", rowsPerMessage), func(b *testing.B) {
			const messages = 1000
			spec, msgs := benchIPCMessages(b, messages, rowsPerMessage)
			d, err := NewArrowIPCDecoder(spec, memory.NewGoAllocator())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Release()
			size := 0
			for _, m := range msgs {
				size += len(m.Value)
			}
			rows := messages * rowsPerMessage
			b.SetBytes(int64(size))
			b.ReportAllocs()
			iters := 0
			for b.Loop() {
				iters++
				rec, rej := d.Decode(msgs)
				if len(rej) != 0 || rec.NumRows() != int64(rows) {
					b.Fatalf("rows %d, rejected %v", rec.NumRows(), rej)
				}
				rec.Release()
			}
			b.ReportMetric(float64(iters)*float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(rows), "B/row")
		})
	}
}
