package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// testSpec mirrors the event shape of DESIGN.md §3.
var testSpec = Spec{
	EventTime:    "ts",
	Model:        "model",
	ModelVersion: "model_version",
	Fields: []Field{
		{Name: "car_value", Path: "features.car_value", Type: Number},
		{Name: "salary_range", Path: "features.salary_range", Type: String},
		{Name: "y_pred_proba", Path: "prediction.y_pred_proba", Type: Number},
	},
}

// kafkaTime is the Message.Time used by the tests: 2026-11-25T09:00:00Z.
var kafkaTime = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func newTestDecoder(t testing.TB, spec Spec) (*JSONDecoder, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	d, err := NewJSONDecoder(spec, mem)
	if err != nil {
		t.Fatalf("NewJSONDecoder: %v", err)
	}
	return d, mem
}

func messages(values ...string) []Message {
	msgs := make([]Message, len(values))
	for i, v := range values {
		msgs[i] = Message{Value: []byte(v), Time: kafkaTime, Offset: int64(i)}
	}
	return msgs
}

// rowStrings renders every row of rec as "col=value ..." so that tests compare readable
// strings; null is "null", strings are quoted, times are RFC 3339.
func rowStrings(t testing.TB, rec arrow.Record) []string {
	t.Helper()
	rows := make([]string, rec.NumRows())
	for r := range rows {
		var sb strings.Builder
		for c := 0; c < int(rec.NumCols()); c++ {
			if c > 0 {
				sb.WriteByte(' ')
			}
			col := rec.Column(c)
			if col.IsNull(r) {
				sb.WriteString("null")
				continue
			}
			switch a := col.(type) {
			case *array.Int64:
				if rec.ColumnName(c) == ColEventTime {
					sb.WriteString(time.Unix(0, a.Value(r)).UTC().Format(time.RFC3339Nano))
				} else {
					sb.WriteString(strconv.FormatInt(a.Value(r), 10))
				}
			case *array.Float64:
				sb.WriteString(strconv.FormatFloat(a.Value(r), 'g', -1, 64))
			case *array.String:
				sb.WriteString(strconv.Quote(a.Value(r)))
			case *array.Boolean:
				sb.WriteString(strconv.FormatBool(a.Value(r)))
			default:
				t.Fatalf("unexpected column type %s", col.DataType())
			}
		}
		rows[r] = sb.String()
	}
	return rows
}

func TestJSONDecode(t *testing.T) {
	const base = `"ts":"2026-11-25T10:00:00Z","model":"car-loan","model_version":"3.2.0"`
	tests := []struct {
		name   string
		msg    string
		want   string // rendered row: time model version car_value salary_range y_pred_proba
		reason Reason // non-empty: the message must be rejected with this reason
		errHas string // substring of the rejection error
	}{
		{
			name: "design example",
			msg: `{"event_id":"a1","ts":"2026-11-25T10:00:00Z","model":"car-loan","model_version":"3.2.0",
 "features":{"car_value":39811,"salary_range":"40K - 60K €","loan_length":19},
 "prediction":{"y_pred_proba":0.99,"y_pred":1}}`,
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 39811 "40K - 60K €" 0.99`,
		},
		{
			name: "keys in any order, whitespace everywhere",
			msg:  "\t{ \"prediction\" : { \"y_pred_proba\" : -1.5e-3 } ,\n\"features\":{\"salary_range\":\"x\" , \"car_value\" : 0},\r\n" + base + " }\n",
			want: `2026-11-25T10:00:00Z "car-loan" "3.2.0" 0 "x" -0.0015`,
		},
		{
			name: "absent and null fields are null, absent time is the Kafka time",
			msg:  `{"features":{"car_value":null},"prediction":null}`,
			want: `2026-11-25T09:00:00Z null null null null null`,
		},
		{
			name: "null time is the Kafka time",
			msg:  `{"ts":null,"features":{"car_value":1}}`,
			want: `2026-11-25T09:00:00Z null null 1 null null`,
		},
		{
			name: "parent that is not an object makes children absent",
			msg:  `{"features":3,"prediction":[{"y_pred_proba":1}]}`,
			want: `2026-11-25T09:00:00Z null null null null null`,
		},
		{
			name: "skips nested objects, arrays and escaped strings it does not need",
			msg: `{"extra":{"a":[1,{"b":"}]\"{"},[],{}],"features":{"car_value":"no"}},"s":"\\\"","features":` +
				`{"deep":{"car_value":"wrong"},"car_value":2.5,"salary_range":"ok"},"t":true,"f":false,"n":null}`,
			want: `2026-11-25T09:00:00Z null null 2.5 "ok" null`,
		},
		{
			name: "duplicate key: last wins",
			msg:  `{"features":{"car_value":1,"car_value":2}}`,
			want: `2026-11-25T09:00:00Z null null 2 null null`,
		},
		{
			name: "escapes and unicode in strings",
			msg:  `{"model":"a\"b\\c\/d\b\f\n\r\t","model_version":"\u00e9\u20ac\ud83d\ude00 é€😀","features":{"salary_range":"\ud800 lone"}}`,
			want: `2026-11-25T09:00:00Z "a\"b\\c/d\b\f\n\r\t" "é€😀 é€😀" null "� lone" null`,
		},
		{
			name: "escaped key matches the path",
			msg:  `{"fe\u0061tures":{"car_\u0076alue":7}}`,
			want: `2026-11-25T09:00:00Z null null 7 null null`,
		},
		{
			name: "booleans and numbers in string fields, booleans in number fields",
			msg:  `{"model":true,"model_version":false,"features":{"car_value":true,"salary_range":3},"prediction":{"y_pred_proba":false}}`,
			want: `2026-11-25T09:00:00Z "true" "false" 1 "3" 0`,
		},
		{
			name: "number text: integers verbatim, other numbers shortest decimal",
			msg:  `{"model":12345678901234567890,"model_version":-0,"features":{"salary_range":3.0e0}}`,
			want: `2026-11-25T09:00:00Z "12345678901234567890" "0" null "3" null`,
		},
		{
			name: "number text: fractions and exponents",
			msg:  `{"model":0.50,"model_version":1e21,"features":{"salary_range":-1.25E-7}}`,
			want: `2026-11-25T09:00:00Z "0.5" "1e+21" null "-1.25e-07" null`,
		},
		{
			name: "NaN and infinities as strings in number fields",
			msg:  `{"features":{"car_value":"NaN"},"prediction":{"y_pred_proba":"-Infinity"}}`,
			want: `2026-11-25T09:00:00Z null null NaN null -Inf`,
		},
		{
			name: "+Infinity and overflow",
			msg:  `{"features":{"car_value":"+Infinity"},"prediction":{"y_pred_proba":-1e400}}`,
			want: `2026-11-25T09:00:00Z null null +Inf null -Inf`,
		},
		{name: "time RFC3339Nano with offset", msg: `{"ts":"2026-11-25T11:00:00.123456789+01:00"}`,
			want: `2026-11-25T10:00:00.123456789Z null null null null null`},
		{name: "time with space and no zone is UTC", msg: `{"ts":"2018-01-01 00:08:43.152"}`,
			want: `2018-01-01T00:08:43.152Z null null null null null`},
		{name: "time without zone is UTC", msg: `{"ts":"2018-01-01T00:08:43"}`,
			want: `2018-01-01T00:08:43Z null null null null null`},
		{name: "time date only", msg: `{"ts":"2018-01-02"}`,
			want: `2018-01-02T00:00:00Z null null null null null`},
		{name: "time unix seconds", msg: `{"ts":1764064800}`,
			want: `2025-11-25T10:00:00Z null null null null null`},
		{name: "time unix seconds with fraction", msg: `{"ts":1764064800.25}`,
			want: `2025-11-25T10:00:00.25Z null null null null null`},
		{name: "time unix milliseconds", msg: `{"ts":1764064800123}`,
			want: `2025-11-25T10:00:00.123Z null null null null null`},
		{name: "time unix microseconds", msg: `{"ts":1764064800123456}`,
			want: `2025-11-25T10:00:00.123456Z null null null null null`},
		{name: "time unix nanoseconds", msg: `{"ts":1764064800123456789}`,
			want: `2025-11-25T10:00:00.123456789Z null null null null null`},
		{name: "time unix seconds as string", msg: `{"ts":"1764064800"}`,
			want: `2025-11-25T10:00:00Z null null null null null`},
		{name: "time unix milliseconds as float", msg: `{"ts":1.764064800123e12}`,
			want: `2025-11-25T10:00:00.123Z null null null null null`},

		{name: "string in number field", msg: `{"features":{"car_value":"39811"}}`,
			reason: ReasonWrongType, errHas: `"features.car_value"`},
		{name: "object in number field", msg: `{"prediction":{"y_pred_proba":{"v":1}}}`,
			reason: ReasonWrongType, errHas: `"prediction.y_pred_proba": object`},
		{name: "array in string field", msg: `{"features":{"salary_range":["a"]}}`,
			reason: ReasonWrongType, errHas: `"features.salary_range": array`},
		{name: "object in model", msg: `{"model":{}}`,
			reason: ReasonWrongType, errHas: `"model"`},
		{name: "invalid UTF-8 in a string field", msg: "{\"features\":{\"salary_range\":\"\xff\"}}",
			reason: ReasonMalformed, errHas: "UTF-8"},
		{name: "bad time text", msg: `{"ts":"yesterday"}`, reason: ReasonBadTime, errHas: `"ts"`},
		{name: "bad time date", msg: `{"ts":"2026-13-01T00:00:00Z"}`, reason: ReasonBadTime},
		{name: "time is a boolean", msg: `{"ts":true}`, reason: ReasonBadTime, errHas: "boolean"},
		{name: "time is an object", msg: `{"ts":{}}`, reason: ReasonBadTime},
		{name: "time out of range", msg: `{"ts":"3000-01-01T00:00:00Z"}`, reason: ReasonBadTime},
		{name: "time number out of range", msg: `{"ts":9.3e18}`, reason: ReasonBadTime},
		{name: "time seconds out of range", msg: `{"ts":-99999999999}`, reason: ReasonBadTime},
		{name: "empty message", msg: ``, reason: ReasonMalformed, errHas: "empty"},
		{name: "whitespace only", msg: " \n", reason: ReasonMalformed},
		{name: "truncated", msg: `{"features":{"car_value":1`, reason: ReasonMalformed, errHas: "end of input"},
		{name: "truncated string", msg: `{"features":{"salary_range":"abc`, reason: ReasonMalformed},
		{name: "trailing junk", msg: `{"ts":null} x`, reason: ReasonMalformed, errHas: "trailing"},
		{name: "two objects", msg: `{}{}`, reason: ReasonMalformed},
		{name: "not an object", msg: `[{"features":{}}]`, reason: ReasonMalformed, errHas: "not a JSON object"},
		{name: "garbage", msg: "\x00\x01binary", reason: ReasonMalformed},
		{name: "single quotes", msg: `{'ts':1}`, reason: ReasonMalformed},
		{name: "missing colon", msg: `{"ts" 1}`, reason: ReasonMalformed},
		{name: "trailing comma", msg: `{"ts":1,}`, reason: ReasonMalformed},
		{name: "trailing comma in array", msg: `{"a":[1,]}`, reason: ReasonMalformed},
		{name: "leading zero", msg: `{"features":{"car_value":01}}`, reason: ReasonMalformed},
		{name: "bare dot", msg: `{"features":{"car_value":1.}}`, reason: ReasonMalformed},
		{name: "plus sign", msg: `{"a":+1}`, reason: ReasonMalformed},
		{name: "NaN literal", msg: `{"features":{"car_value":NaN}}`, reason: ReasonMalformed},
		{name: "bad literal", msg: `{"a":tru}`, reason: ReasonMalformed},
		{name: "bad escape", msg: `{"a":"\x"}`, reason: ReasonMalformed},
		{name: "bad unicode escape", msg: `{"a":"\u12g4"}`, reason: ReasonMalformed},
		{name: "control character in string", msg: "{\"a\":\"\n\"}", reason: ReasonMalformed},
		{name: "too deep", msg: `{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
			reason: ReasonMalformed, errHas: "too deep"},
		{name: "too large", msg: `{"pad":"` + strings.Repeat("x", DefaultMaxMessageBytes) + `"}`,
			reason: ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, mem := newTestDecoder(t, testSpec)
			defer mem.AssertSize(t, 0)
			defer d.Release()
			rec, rej := d.Decode(messages(tt.msg))
			defer rec.Release()
			if tt.reason != "" {
				if rec.NumRows() != 0 || len(rej) != 1 {
					t.Fatalf("want one rejection, got %d rows %v", rec.NumRows(), rej)
				}
				if rej[0].Reason != tt.reason || rej[0].Index != 0 {
					t.Errorf("rejected as %s at %d (%v), want %s", rej[0].Reason, rej[0].Index, rej[0].Err, tt.reason)
				}
				if !strings.Contains(rej[0].Err.Error(), tt.errHas) {
					t.Errorf("error %q does not contain %q", rej[0].Err, tt.errHas)
				}
				return
			}
			if len(rej) != 0 {
				t.Fatalf("rejected: %s: %v", rej[0].Reason, rej[0].Err)
			}
			got := rowStrings(t, rec)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestJSONDecodeMixedBatch(t *testing.T) {
	d, mem := newTestDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()

	msgs := messages(
		`{"ts":"2026-11-25T10:00:00Z","model":"m","features":{"car_value":1,"salary_range":"a"},"prediction":{"y_pred_proba":0.1}}`,
		`{"features":{"car_value":2,"salary_range":"b"},"prediction":{"y_pred_proba":"high"}}`, // wrong type after good values
		`{"features":{"car_value":3,"salary_range":"c"`,                                        // truncated
		`{"ts":1764064800,"features":{"car_value":4,"salary_range":"d"}}`,
		`{"ts":"soon","features":{"car_value":5,"salary_range":"e"}}`,
		`{"model":"m2","model_version":"v","features":{"salary_range":"f"},"prediction":{"y_pred_proba":0.6}}`,
	)
	rec, rej := d.Decode(msgs)
	defer rec.Release()

	want := []string{
		`2026-11-25T10:00:00Z "m" null 1 "a" 0.1`,
		`2025-11-25T10:00:00Z null null 4 "d" null`,
		`2026-11-25T09:00:00Z "m2" "v" null "f" 0.6`,
	}
	if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantRej := []struct {
		index  int
		reason Reason
	}{{1, ReasonWrongType}, {2, ReasonMalformed}, {4, ReasonBadTime}}
	if len(rej) != len(wantRej) {
		t.Fatalf("rejected %v, want %v", rej, wantRej)
	}
	for i, w := range wantRej {
		if rej[i].Index != w.index || rej[i].Reason != w.reason {
			t.Errorf("rejected[%d] = %d %s (%v), want %d %s", i, rej[i].Index, rej[i].Reason, rej[i].Err, w.index, w.reason)
		}
	}
	// Every column has exactly the good rows: a rejected row left nothing behind.
	for c := 0; c < int(rec.NumCols()); c++ {
		if n := rec.Column(c).Len(); n != 3 {
			t.Errorf("column %s has %d values, want 3", rec.ColumnName(c), n)
		}
	}
	if !rec.Schema().Equal(testSpec.Schema()) {
		t.Errorf("schema %s, want %s", rec.Schema(), testSpec.Schema())
	}
}

func TestJSONDecodeReusesBuilders(t *testing.T) {
	d, mem := newTestDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()

	rec1, _ := d.Decode(messages(`{"features":{"car_value":1}}`, `{"features":{"car_value":2}}`))
	defer rec1.Release()
	rec2, rej := d.Decode(messages(`{"features":{"car_value":3}}`))
	defer rec2.Release()
	empty, rej2 := d.Decode(messages(`nope`))
	defer empty.Release()

	if rec1.NumRows() != 2 || rec2.NumRows() != 1 || len(rej) != 0 {
		t.Fatalf("rows %d, %d; rejected %v", rec1.NumRows(), rec2.NumRows(), rej)
	}
	if v := rec1.Column(3).(*array.Float64).Value(1); v != 2 {
		t.Errorf("first record changed by the second decode: %v", v)
	}
	if v := rec2.Column(3).(*array.Float64).Value(0); v != 3 {
		t.Errorf("second record: %v", v)
	}
	if empty == nil || empty.NumRows() != 0 || len(rej2) != 1 || empty.NumCols() != 6 {
		t.Errorf("all-rejected batch: %v rows, %v", empty.NumRows(), rej2)
	}
}

func TestJSONDecodeEnvelope(t *testing.T) {
	spec := testSpec
	spec.Envelope = "data.event"
	d, mem := newTestDecoder(t, spec)
	defer mem.AssertSize(t, 0)
	defer d.Release()

	rec, rej := d.Decode(messages(
		`{"specversion":"1.0","ts":"2000-01-01T00:00:00Z","data":{"event":{"ts":"2026-11-25T10:00:00Z","features":{"car_value":1}}}}`,
		`{"specversion":"1.0","features":{"car_value":2}}`,
		`{"data":{"event":"not an object"}}`,
		`{"data":{"event":{}}}`,
	))
	defer rec.Release()
	want := []string{
		`2026-11-25T10:00:00Z null null 1 null null`,
		`2026-11-25T09:00:00Z null null null null null`,
	}
	if got := rowStrings(t, rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rej) != 2 || rej[0].Index != 1 || rej[1].Index != 2 ||
		rej[0].Reason != ReasonMissingEnvelope || rej[1].Reason != ReasonMissingEnvelope {
		t.Errorf("rejected %v", rej)
	}
}

func TestJSONDecodeMaxMessageBytes(t *testing.T) {
	spec := testSpec
	spec.MaxMessageBytes = 20
	d, mem := newTestDecoder(t, spec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode(messages(`{"ts":null}`, `{"ts":null,"pad":"xxxxxxxx"}`))
	defer rec.Release()
	if rec.NumRows() != 1 || len(rej) != 1 || rej[0].Reason != ReasonTooLarge || rej[0].Index != 1 {
		t.Errorf("rows %d, rejected %v", rec.NumRows(), rej)
	}

	spec.MaxMessageBytes = -1
	d2, err := NewJSONDecoder(spec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Release()
	rec2, rej2 := d2.Decode(messages(`{"pad":"` + strings.Repeat("x", DefaultMaxMessageBytes) + `"}`))
	defer rec2.Release()
	if rec2.NumRows() != 1 || len(rej2) != 0 {
		t.Errorf("no limit: rows %d, rejected %v", rec2.NumRows(), rej2)
	}
}

func TestJSONDecodeSamePathTwice(t *testing.T) {
	spec := Spec{Fields: []Field{
		{Name: "y_num", Path: "y", Type: Number},
		{Name: "y_cat", Path: "y", Type: String},
	}}
	d, mem := newTestDecoder(t, spec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode(messages(`{"y":1}`))
	defer rec.Release()
	if got := rowStrings(t, rec); len(rej) != 0 || len(got) != 1 || got[0] != `2026-11-25T09:00:00Z null null 1 "1"` {
		t.Errorf("got %q, rejected %v", got, rej)
	}
}

func TestJSONDecodeRequireEventTime(t *testing.T) {
	spec := testSpec
	spec.RequireEventTime = true
	d, mem := newTestDecoder(t, spec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, rej := d.Decode(messages(`{"ts":1764064800}`, `{}`, `{"ts":null}`))
	defer rec.Release()
	if rec.NumRows() != 1 || len(rej) != 2 || rej[0].Reason != ReasonBadTime || rej[1].Reason != ReasonBadTime {
		t.Errorf("rows %d, rejected %v", rec.NumRows(), rej)
	}
}

func TestJSONDecodeZeroMessageTime(t *testing.T) {
	d, mem := newTestDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	rec, _ := d.Decode([]Message{{Value: []byte(`{}`)}})
	defer rec.Release()
	if v := rec.Column(0).(*array.Int64).Value(0); v != 0 {
		t.Errorf("event time %d, want 0 for a message without time", v)
	}
}

func TestSpecValidate(t *testing.T) {
	if err := testSpec.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	bad := Spec{
		EventTime: "a..b",
		Envelope:  ".data",
		Fields: []Field{
			{Name: "", Path: "x", Type: Number},
			{Name: "__model", Path: "m", Type: String},
			{Name: "car_value", Path: "", Type: Number},
			{Name: "car_value", Path: "f.car_value", Type: 0},
		},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid spec accepted")
	}
	for _, want := range []string{
		`event_time: path "a..b" has an empty segment`,
		`envelope: path ".data" has an empty segment`,
		`fields[0]: name is empty`,
		`fields[1] (__model): name must not start with "__"`,
		`fields[2] (car_value): path is empty`,
		`fields[3] (car_value): name duplicates fields[2]`,
		`fields[3] (car_value): type Type(0) is neither number nor string`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (Spec{}).Validate(); err == nil || !strings.Contains(err.Error(), "at least one field") {
		t.Errorf("empty spec: %v", err)
	}
	if _, err := NewJSONDecoder(bad, nil); err == nil || !strings.HasPrefix(err.Error(), "cannot create JSON decoder: ") {
		t.Errorf("NewJSONDecoder(bad) = %v", err)
	}
}

func TestSpecSchema(t *testing.T) {
	got := testSpec.Schema().String()
	for _, want := range []string{
		"__event_time: type=int64\n", "__model: type=utf8, nullable", "__model_version: type=utf8, nullable",
		"car_value: type=float64, nullable", "salary_range: type=utf8, nullable", "y_pred_proba: type=float64, nullable",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("schema lacks %q:\n%s", want, got)
		}
	}
	if Number.String() != "number" || String.String() != "string" {
		t.Errorf("Type.String: %s %s", Number, String)
	}
}

// TestUnescapeMatchesEncodingJSON compares the unescaper with encoding/json.
func TestUnescapeMatchesEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`plain`, `\"\\\/\b\f\n\r\t`, `\u0041\u00e9\u20AC`, `\ud83d\ude00`, `\ud83d`, `\ude00x`,
		`\ud83d\u0041`, `a\ud83dbc`, `\u0000`, `mixed é \u00e9 😀 \ud83d\ude00`,
	} {
		var want string
		if err := json.Unmarshal([]byte(`"`+body+`"`), &want); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got := string(unescape(nil, []byte(body))); got != want {
			t.Errorf("unescape(%s) = %q, want %q", body, got, want)
		}
	}
}

// FuzzJSONDecode checks that any input is either a row or a rejection, never a panic or a
// leak, and that accepted input is valid JSON.
func FuzzJSONDecode(f *testing.F) {
	for _, seed := range []string{
		`{"ts":"2026-11-25T10:00:00Z","model":"car-loan","model_version":"3.2.0","features":{"car_value":39811,"salary_range":"40K - 60K €"},"prediction":{"y_pred_proba":0.99}}`,
		`{"features":{"car_value":"NaN","salary_range":true},"prediction":{"y_pred_proba":-1e400}}`,
		`{"ts":1764064800123,"a":[1,{"b":"\u00e9\ud83d\ude00"},[]],"features":null}`,
		`{"ts":"2018-01-01 00:08:43.152","model":1.5e3}`,
		`{"features":{"car_value":"x"}}`,
		`{"ts":"x"}`,
		`{"a":"\x"}`,
		`{"a":1}}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(f, 0)
	d, err := NewJSONDecoder(testSpec, mem)
	if err != nil {
		f.Fatal(err)
	}
	defer d.Release()
	f.Fuzz(func(t *testing.T, b []byte) {
		// The same input alone and between two good messages.
		msgs := []Message{
			{Value: b, Time: kafkaTime},
			{Value: []byte(`{"features":{"car_value":1}}`), Time: kafkaTime},
			{Value: b, Time: kafkaTime},
			{Value: []byte(`{"features":{"car_value":2}}`), Time: kafkaTime},
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
		if len(rej) != 0 && len(rej) != 2 {
			t.Fatalf("the same input was decided differently: %v", rej)
		}
		if len(rej) == 0 && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if len(rej) == 2 {
			r := rej[0]
			if r.Index != 0 || rej[1].Index != 2 || r.Reason != rej[1].Reason || r.Err == nil {
				t.Fatalf("rejections %v", rej)
			}
			if r.Reason == ReasonMalformed && json.Valid(b) {
				trimmed := bytes.TrimLeft(b, " \t\r\n")
				msg := r.Err.Error()
				if len(trimmed) > 0 && trimmed[0] == '{' && !strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "too deep") {
					t.Fatalf("valid JSON object rejected as malformed: %v", r.Err)
				}
			}
		}
		vals := rec.Column(3).(*array.Float64)
		if vals.Value(int(rec.NumRows())-1) != 2 {
			t.Fatalf("last good row lost")
		}
		// The shared decoder carries key guesses from earlier inputs; a fresh one has none.
		fresh, err := NewJSONDecoder(testSpec, mem)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Release()
		frec, frej := fresh.Decode(msgs[:1])
		defer frec.Release()
		got, want := rowStrings(t, rec), rowStrings(t, frec)
		switch {
		case len(frej) != len(rej)/2:
			t.Fatalf("fresh decoder rejected %v, shared %v", frej, rej)
		case len(frej) == 1 && frej[0].Reason != rej[0].Reason:
			t.Fatalf("fresh decoder rejected as %s, shared as %s", frej[0].Reason, rej[0].Reason)
		case len(frej) == 0 && (got[0] != want[0] || got[2] != want[0]):
			t.Fatalf("fresh decoder: %q, shared: %q", want, got)
		}
	})
}

// benchMessages builds n inference events with 20 numeric and 5 categorical features,
// plus fields the spec does not ask for.
func benchMessages(n int) (Spec, []Message) {
	spec := Spec{EventTime: "ts", Model: "model", ModelVersion: "model_version"}
	for i := range 20 {
		spec.Fields = append(spec.Fields, Field{Name: fmt.Sprintf("num_%02d", i), Path: fmt.Sprintf("features.num_%02d", i), Type: Number})
	}
	for i := range 5 {
		spec.Fields = append(spec.Fields, Field{Name: fmt.Sprintf("cat_%d", i), Path: fmt.Sprintf("features.cat_%d", i), Type: String})
	}
	cats := []string{"0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €", "unknown"}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	msgs := make([]Message, n)
	for i := range msgs {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"event_id":"ev-%08d","ts":%q,"model":"car-loan","model_version":"3.2.0","request":{"ip":"10.0.0.1","headers":{"ua":"x"}},"features":{`,
			i, t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
		for j := range 20 {
			fmt.Fprintf(&b, `"num_%02d":%s,`, j, strconv.FormatFloat(rng.NormFloat64()*1000, 'f', -1, 64))
		}
		for j := range 5 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"cat_%d":%q`, j, cats[rng.IntN(len(cats))])
		}
		fmt.Fprintf(&b, `},"prediction":{"y_pred_proba":%.2f,"y_pred":%d}}`, rng.Float64(), rng.IntN(2))
		msgs[i] = Message{Value: b.Bytes(), Time: t0}
	}
	return spec, msgs
}

func BenchmarkJSONDecode(b *testing.B) {
	const batch = 1000
	spec, msgs := benchMessages(batch)
	d, err := NewJSONDecoder(spec, memory.NewGoAllocator())
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

func TestUnixNanos(t *testing.T) {
	tests := []struct {
		lit  string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"-0", 0, true},
		{"-1.5", -1_500_000_000, true},
		{"1e9", 1e18, true},
		{"1.7640648e9", 1_764_064_800_000_000_000, true},
		{"1764064800.123456789123", 1_764_064_800_123_456_789, true},
		{"17640648001.5e-1", 1_764_064_800_150_000_000, true},
		{"99999999999", 0, false},                       // seconds beyond 2262
		{"100000000000", 100_000_000_000_000_000, true}, // 1e11 → milliseconds
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"1e-2000", 0, true},
		{"1e2000", 0, false},
		{"0.0000000001", 0, true},
	}
	for _, tt := range tests {
		got, ok := unixNanos(tt.lit)
		if got != tt.want || ok != tt.ok {
			t.Errorf("unixNanos(%s) = %d, %v; want %d, %v", tt.lit, got, ok, tt.want, tt.ok)
		}
	}
}

// TestJSONDecodeKeyGuess: the scanner guesses each key from the last message's key at
// the same position; whatever the messages of a batch look like, one decoder must give
// the same rows and rejections as a fresh decoder per message.
func TestJSONDecodeKeyGuess(t *testing.T) {
	many := make([]string, 0, maxSeenKeys+10)
	for i := range maxSeenKeys + 10 {
		many = append(many, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	msgs := []string{
		`{"ts":"2026-11-25T10:00:00Z","model":"m","features":{"car_value":1,"salary_range":"a"},"prediction":{"y_pred_proba":0.1}}`,
		`{"ts":"2026-11-25T10:00:01Z","model":"m","features":{"car_value":2,"salary_range":"b"},"prediction":{"y_pred_proba":0.2}}`,
		// Same positions, other keys: a prefix, a longer key, a key one byte off.
		`{"t":"x","mode":"m","features":{"car_valu":3,"salary_range_x":"c"},"prediction":{"y_pred_probb":0.3}}`,
		// Keys swapped, an escaped key where the plain one was guessed.
		`{"model":"m","ts":"2026-11-25T10:00:02Z","features":{"salary_range":"d","c\u0061r_value":4}}`,
		`{"ts":"2026-11-25T10:00:03Z","model":"m","features":{"car_value":5,"salary_range":"e"},"prediction":{"y_pred_proba":0.5}}`,
		// Duplicates at guessed positions: the last one wins.
		`{"ts":"2026-11-25T10:00:04Z","ts":"2026-11-25T10:00:05Z","features":{"car_value":6,"car_value":7}}`,
		// The feature object nested one level deeper, and a parent that is not an object.
		`{"features":{"features":{"car_value":8}},"prediction":3}`,
		// More keys than are remembered, the wanted one last.
		`{` + strings.Join(many, ",") + `,"features":{"car_value":9}}`,
		`{` + strings.Join(many, ",") + `,"features":{"car_value":10}}`,
		// Bad messages between good ones.
		`{"ts":"2026-11-25T10:00:06Z","model":"m","features":{"car_value":"x"}}`,
		`{"ts":"2026-11-25T10:00:07Z","model":"m","features":{"car_value":11,"salary_range":"\xff"}}`,
		`{"ts":"2026-11-25T10:00:08Z","model":"m","features":{"car_value":12,"salary_range":"f"},"prediction":{"y_pred_proba":0.6}}`,
		`{"ts":"2026-11-25T10:00:09Z","model":"m","features":{"car_value":13,"salary_range":"g"},"prediction":{"y_pred_proba":0.7}`,
		`{"ts":"2026-11-25T10:00:10Z","model":"m","features":{"car_value":14,"salary_range":"h"},"prediction":{"y_pred_proba":0.8}}`,
	}
	d, mem := newTestDecoder(t, testSpec)
	defer mem.AssertSize(t, 0)
	defer d.Release()
	for round := range 2 { // the second round starts from the guesses of the first
		rec, rej := d.Decode(messages(msgs...))
		got := rowStrings(t, rec)
		rec.Release()
		var want []string
		var wantRej []Reason
		for _, m := range msgs {
			fresh, fmem := newTestDecoder(t, testSpec)
			r, rj := fresh.Decode(messages(m))
			want = append(want, rowStrings(t, r)...)
			for _, x := range rj {
				wantRej = append(wantRej, x.Reason)
			}
			r.Release()
			fresh.Release()
			fmem.AssertSize(t, 0)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("round %d: rows\n%s\nwant\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var gotRej []Reason
		for _, x := range rej {
			gotRej = append(gotRej, x.Reason)
		}
		if fmt.Sprint(gotRej) != fmt.Sprint(wantRej) {
			t.Errorf("round %d: rejected %v, want %v", round, gotRej, wantRej)
		}
	}
}

// TestFastFloat: where the fast path answers, it answers what strconv.ParseFloat does,
// bit for bit.
func TestFastFloat(t *testing.T) {
	lits := []string{"0", "-0", "0.0", "-0.0", "0e5", "-0e-5", "1", "-1", "39811", "0.99", "-1.5e-3",
		"1e22", "1e23", "1e-22", "1e-23", "9007199254740991", "9007199254740992", "9007199254740993",
		"123456789012345678", "0.1", "0.30000000000000004", "3.0e0", "1E+2", "1.7976931348623157e308",
		"5e-324", "1e400", "-1e400", "0.000001", "100", "1.000", "12345678.9", "4.35", "1e0"}
	r := rand.New(rand.NewPCG(9, 9))
	for range 20000 {
		var b []byte
		if r.IntN(2) == 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, r.Uint64N(1<<uint(r.IntN(60)+1)), 10)
		if r.IntN(2) == 0 {
			b = append(b, '.')
			for range r.IntN(12) + 1 {
				b = append(b, byte('0'+r.IntN(10)))
			}
		}
		if r.IntN(3) == 0 {
			b = append(b, "eE"[r.IntN(2)])
			if r.IntN(2) == 0 {
				b = append(b, "+-"[r.IntN(2)])
			}
			b = strconv.AppendInt(b, int64(r.IntN(30)), 10)
		}
		lits = append(lits, string(b))
	}
	r2 := rand.New(rand.NewPCG(1, 1))
	for range 100000 { // what producers log: shortest and fixed-precision floats
		v := r2.NormFloat64() * math.Pow(10, float64(r2.IntN(20)-10))
		lits = append(lits, strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(v, 'g', 8, 64), strconv.FormatFloat(v, 'f', 2, 64))
		// Any bits at all, and long mantissas near the limits of Eisel–Lemire.
		w := math.Float64frombits(r2.Uint64())
		if !math.IsNaN(w) && !math.IsInf(w, 0) {
			lits = append(lits, strconv.FormatFloat(w, 'g', -1, 64), strconv.FormatFloat(w, 'e', 18, 64))
		}
		lits = append(lits, strconv.FormatUint(r2.Uint64()%1e19, 10)+"e"+strconv.Itoa(r2.IntN(700)-350))
	}
	fast := 0
	for _, lit := range lits {
		if !validNumber([]byte(lit)) {
			continue
		}
		got, ok := fastFloat([]byte(lit))
		if !ok {
			continue
		}
		fast++
		want, _ := strconv.ParseFloat(lit, 64)
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("fastFloat(%s) = %v, want %v", lit, got, want)
		}
	}
	if fast < len(lits)*3/4 {
		t.Errorf("fast path took %d of %d literals", fast, len(lits))
	}
	// Rows of strconv's table: its first, and exact powers.
	for _, c := range []struct {
		q      int
		lo, hi uint64
	}{{-348, 0x1732C869CD60E453, 0xFA8FD5A0081C0288}, {0, 0, 0x8000000000000000}, {1, 0, 0xA000000000000000},
		{43, 0x6D9CCD05D0000000, 0xE596B7B0C643C719}} {
		if got := powersOfTen()[c.q-powersOfTenMinExp10]; got != [2]uint64{c.lo, c.hi} {
			t.Errorf("1e%d: %#x, want {%#x %#x}", c.q, got, c.lo, c.hi)
		}
	}
}

// TestParseRFC3339Fast: where the fast path answers, it answers what time.Parse does.
func TestParseRFC3339Fast(t *testing.T) {
	texts := []string{
		"2026-11-25T10:00:00Z", "2026-11-25T11:00:00.123456789+01:00", "2000-02-29T23:59:59.5-00:30",
		"1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T23:60:00Z", "2026-11-25T23:59:60Z",
		"2026-11-25T10:00:00+24:00", "2026-11-25T10:00:00+23:59", "2026-11-25T10:00:00.Z",
		"2026-11-25T10:00:00.1234567891Z", "2026-11-25T10:00:00z", "2026-11-25t10:00:00Z",
		"2026-11-25T10:00:00", "2026-11-25 10:00:00Z", "1679-01-01T00:00:00+23:59", "2260-12-31T23:59:59-23:59",
		"1678-01-01T00:00:00Z", "2262-01-01T00:00:00Z", "2026-1a-25T10:00:00Z", "2026-11-25T10:00:00+01:0x",
		"0000-01-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
	}
	r := rand.New(rand.NewPCG(5, 6))
	lo := time.Date(1679, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 20000 {
		tm := time.Unix(lo+r.Int64N(hi-lo), r.Int64N(1e9)).UTC()
		zone := time.FixedZone("", (r.IntN(48*60)-24*60)*60)
		layout := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00"}[r.IntN(3)]
		texts = append(texts, tm.In(zone).Format(layout))
	}
	for _, s := range texts {
		got, ok := parseRFC3339Fast(s)
		if !ok {
			continue
		}
		want, err := time.Parse(time.RFC3339, s)
		if err != nil || want.UnixNano() != got {
			t.Errorf("parseRFC3339Fast(%s) = %d, time.Parse: %d, %v", s, got, want.UnixNano(), err)
		}
	}
}
