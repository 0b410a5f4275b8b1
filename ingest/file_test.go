package ingest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// carLoanDir returns the NannyML car-loan data: the repository copy, else the shared one.
func carLoanDir(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"../testdata/nannyml_car_loan", "/work/shared/data/nannyml_car_loan"} {
		if _, err := os.Stat(filepath.Join(dir, "reference.parquet")); err == nil {
			return dir
		}
	}
	t.Skip("nannyml_car_loan data not found")
	return ""
}

// schemaString renders a schema as "name:type" pairs, nullability and metadata omitted.
func schemaString(s *arrow.Schema) string {
	parts := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		parts[i] = f.Name + ":" + f.Type.String()
	}
	return strings.Join(parts, " ")
}

// readAll reads every record of path and returns them retained (the caller releases
// them), with the schema.
func readAll(t *testing.T, path string, opts FileOptions) (*arrow.Schema, []arrow.Record) {
	t.Helper()
	r, err := ReadFile(path, opts)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	defer r.Close()
	var recs []arrow.Record
	for r.Next() {
		rec := r.Record()
		if !rec.Schema().Equal(r.Schema()) {
			t.Fatalf("record schema %s differs from reader schema %s", rec.Schema(), r.Schema())
		}
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	return r.Schema(), recs
}

func TestReadFileCarLoan(t *testing.T) {
	dir := carLoanDir(t)
	const (
		refParquet = "car_value:float64 salary_range:utf8 debt_to_income_ratio:float64 loan_length:float64 " +
			"repaid_loan_on_prev_car:bool size_of_downpayment:utf8 driver_tenure:float64 repaid:float64 " +
			"timestamp:utf8 y_pred_proba:float64 y_pred:int64 __event_time:int64"
		monParquet = "car_value:float64 salary_range:utf8 debt_to_income_ratio:float64 loan_length:float64 " +
			"repaid_loan_on_prev_car:bool size_of_downpayment:utf8 driver_tenure:float64 " +
			"timestamp:utf8 y_pred_proba:float64 y_pred:int64 repaid:int64 __event_time:int64"
		refCSV = "car_value:float64 salary_range:utf8 debt_to_income_ratio:float64 loan_length:float64 " +
			"repaid_loan_on_prev_car:bool size_of_downpayment:utf8 driver_tenure:float64 repaid:float64 " +
			"timestamp:utf8 y_pred_proba:float64 y_pred:float64 __event_time:int64"
		monCSV = "car_value:float64 salary_range:utf8 debt_to_income_ratio:float64 loan_length:float64 " +
			"repaid_loan_on_prev_car:bool size_of_downpayment:utf8 driver_tenure:float64 " +
			"timestamp:utf8 y_pred_proba:float64 y_pred:float64 repaid:float64 __event_time:int64"
	)
	tests := []struct {
		file           string
		schema         string
		first, last    time.Time
		firstCarValue  float64
		firstSalary    string
		firstPrevRepay bool
	}{
		{"reference.parquet", refParquet, time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2018, 10, 30, 17, 51, 16, 848e6, time.UTC), 39811, "40K - 60K €", false},
		{"reference.csv", refCSV, time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2018, 10, 30, 17, 51, 16, 848e6, time.UTC), 39811, "40K - 60K €", false},
		{"monitoring.parquet", monParquet, time.Date(2018, 10, 30, 18, 0, 0, 0, time.UTC),
			time.Date(2019, 8, 29, 11, 51, 16, 848e6, time.UTC), 12638, "0 - 20K €", false},
		{"monitoring.csv", monCSV, time.Date(2018, 10, 30, 18, 0, 0, 0, time.UTC),
			time.Date(2019, 8, 29, 11, 51, 16, 848e6, time.UTC), 12638, "0 - 20K €", false},
	}
	sums := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema, recs := readAll(t, filepath.Join(dir, tt.file), FileOptions{Mem: mem, BatchRows: 10000, EventTime: "timestamp"})
			defer func() {
				for _, rec := range recs {
					rec.Release()
				}
				recs = nil
			}()
			t.Logf("%s schema: %s", tt.file, schemaString(schema))
			if got := schemaString(schema); got != tt.schema {
				t.Errorf("schema\n got %s\nwant %s", got, tt.schema)
			}
			var rows int64
			var sum float64
			var prev int64 = math.MinInt64
			for _, rec := range recs {
				if rec.NumRows() > 10000 {
					t.Errorf("batch of %d rows, want ≤ 10000", rec.NumRows())
				}
				rows += rec.NumRows()
				times := rec.Column(int(rec.NumCols()) - 1).(*array.Int64)
				cv := rec.Column(0).(*array.Float64)
				for i := 0; i < times.Len(); i++ {
					if times.Value(i) < prev {
						t.Fatalf("event time goes backwards at a row: %d < %d", times.Value(i), prev)
					}
					prev = times.Value(i)
					sum += cv.Value(i)
				}
				if n := rec.Column(0).NullN(); n != 0 {
					t.Errorf("car_value has %d nulls", n)
				}
			}
			nulls := make([]int, schema.NumFields())
			for _, rec := range recs {
				for c := range nulls {
					nulls[c] += rec.Column(c).NullN()
				}
			}
			t.Logf("%s nulls per column: %v", tt.file, nulls)
			if rows != 50000 {
				t.Errorf("%d rows, want 50000", rows)
			}
			sums[tt.file] = sum
			first := recs[0]
			if got := time.Unix(0, first.Column(int(first.NumCols())-1).(*array.Int64).Value(0)).UTC(); !got.Equal(tt.first) {
				t.Errorf("first event time %s, want %s", got, tt.first)
			}
			if !tt.last.IsZero() {
				if got := time.Unix(0, prev).UTC(); !got.Equal(tt.last) {
					t.Errorf("last event time %s, want %s", got, tt.last)
				}
			}
			if v := first.Column(0).(*array.Float64).Value(0); v != tt.firstCarValue {
				t.Errorf("car_value[0] = %v, want %v", v, tt.firstCarValue)
			}
			if v := first.Column(1).(*array.String).Value(0); v != tt.firstSalary {
				t.Errorf("salary_range[0] = %q, want %q", v, tt.firstSalary)
			}
			if v := first.Column(4).(*array.Boolean).Value(0); v != tt.firstPrevRepay {
				t.Errorf("repaid_loan_on_prev_car[0] = %v", v)
			}
		})
	}
	if sums["reference.parquet"] != sums["reference.csv"] || sums["monitoring.parquet"] != sums["monitoring.csv"] {
		t.Errorf("car_value sums differ between Parquet and CSV: %v", sums)
	}
}

func TestReadFileCSVInference(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema, recs := readAll(t, "testdata/mixed.csv", FileOptions{Mem: mem, BatchRows: 3, EventTime: "when"})
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	const want = "id:float64 score:float64 flag:bool label:utf8 when:utf8 empty:utf8 __event_time:int64"
	if got := schemaString(schema); got != want {
		t.Errorf("schema\n got %s\nwant %s", got, want)
	}
	if len(recs) != 2 || recs[0].NumRows() != 3 || recs[1].NumRows() != 1 {
		t.Fatalf("got %d records", len(recs))
	}
	var got []string
	for _, rec := range recs {
		got = append(got, rowStrings(t, rec)...)
	}
	wantRows := []string{
		`1 0.5 true "a" "2026-11-25 10:00:00" null 2026-11-25T10:00:00Z`,
		`2 3 false "b, with comma" "2026-11-25T10:00:01Z" null 2026-11-25T10:00:01Z`,
		`3 null false null "1764064802" null 2025-11-25T10:00:02Z`,
		`4 -1000 true null "2026-11-25 10:00:03.5" null 2026-11-25T10:00:03.5Z`,
	}
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
}

func TestReadFileJSONL(t *testing.T) {
	tests := []struct {
		name   string
		opts   FileOptions
		schema string
		rows   []string
	}{
		{
			name: "inferred",
			opts: FileOptions{EventTime: "ts"},
			schema: "event_id:utf8 ts:utf8 model:utf8 features.car_value:float64 features.salary_range:utf8 " +
				"features.ok:utf8 prediction.y_pred_proba:float64 late:utf8 __event_time:int64",
			rows: []string{
				`"a1" "2026-11-25T10:00:00Z" "car-loan" 39811 "40K - 60K €" "true" 0.99 null 2026-11-25T10:00:00Z`,
				`"a2" "1764064801" "car-loan" null "60K+ €" "false" 0.1 null 2025-11-25T10:00:01Z`,
				`"a3" "2026-11-25 10:00:02.5" null 12.5 "x\"y" null null "only here" 2026-11-25T10:00:02.5Z`,
			},
		},
		{
			name: "inferred from the first two lines, no event time",
			opts: FileOptions{InferRows: 2, BatchRows: 2},
			schema: "event_id:utf8 ts:utf8 model:utf8 features.car_value:float64 features.salary_range:utf8 " +
				"features.ok:utf8 prediction.y_pred_proba:float64",
			rows: []string{
				`"a1" "2026-11-25T10:00:00Z" "car-loan" 39811 "40K - 60K €" "true" 0.99`,
				`"a2" "1764064801" "car-loan" null "60K+ €" "false" 0.1`,
				`"a3" "2026-11-25 10:00:02.5" null 12.5 "x\"y" null null`,
			},
		},
		{
			name: "with a spec",
			opts: FileOptions{Spec: &testSpec, EventTime: "ignored"},
			schema: "__event_time:int64 __model:utf8 __model_version:utf8 car_value:float64 salary_range:utf8 " +
				"y_pred_proba:float64",
			rows: []string{
				`2026-11-25T10:00:00Z "car-loan" null 39811 "40K - 60K €" 0.99`,
				`2025-11-25T10:00:01Z "car-loan" null null "60K+ €" 0.1`,
				`2026-11-25T10:00:02.5Z null null 12.5 "x\"y" null`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			tt.opts.Mem = mem
			schema, recs := readAll(t, "testdata/events.jsonl", tt.opts)
			defer func() {
				for _, rec := range recs {
					rec.Release()
				}
			}()
			if got := schemaString(schema); got != tt.schema {
				t.Errorf("schema\n got %s\nwant %s", got, tt.schema)
			}
			var got []string
			for _, rec := range recs {
				got = append(got, rowStrings(t, rec)...)
			}
			if strings.Join(got, "\n") != strings.Join(tt.rows, "\n") {
				t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.rows, "\n"))
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		opts    FileOptions
		openErr string // error from ReadFile
		readErr string // error from Err after Next
	}{
		{name: "unknown extension", path: write("x.txt", "a"), openErr: "unknown file extension"},
		{name: "unknown format", path: write("y.csv", "a\n1\n"), opts: FileOptions{Format: "xml"}, openErr: `unknown format "xml"`},
		{name: "missing file", path: filepath.Join(dir, "none.parquet"), openErr: "cannot read"},
		{name: "not parquet", path: write("bad.parquet", "not parquet at all"), openErr: "cannot read"},
		{name: "empty csv", path: write("empty.csv", ""), openErr: "no header"},
		{name: "ragged csv", path: write("ragged.csv", "a,b\n1,2\n3\n"), openErr: "wrong number of fields"},
		{name: "missing event time column", path: "testdata/mixed.csv", opts: FileOptions{EventTime: "nope"},
			openErr: `event time column "nope" not found`},
		{name: "bad event time", path: "testdata/mixed.csv", opts: FileOptions{EventTime: "label"},
			readErr: `row 1: event time column "label"`},
		{name: "null event time", path: "testdata/mixed.csv", opts: FileOptions{EventTime: "score"},
			readErr: `row 3: event time column "score" is null`},
		{name: "csv type changes after the sample", path: "testdata/late_type_change.csv", opts: FileOptions{InferRows: 1},
			readErr: `row 2, column "score": "x" is not a number`},
		{name: "jsonl wrong type", path: "testdata/bad_type.jsonl", opts: FileOptions{InferRows: 1},
			readErr: `line 2: wrong_type: decode "v"`},
		{name: "jsonl truncated line", path: "testdata/truncated.jsonl", opts: FileOptions{InferRows: 1},
			readErr: "line 2: malformed"},
		{name: "jsonl truncated line in the sample", path: "testdata/truncated.jsonl", openErr: "line 2"},
		{name: "jsonl missing event time path", path: "testdata/events.jsonl", opts: FileOptions{EventTime: "nope"},
			openErr: `event time path "nope" not found`},
		{name: "jsonl not objects", path: write("arr.jsonl", "[1]\n"), openErr: "line 1: not a JSON object"},

		// Damaged files: an error naming the file, and where known the row and column.
		{name: "parquet with a corrupt page", path: "testdata/files/corrupt_page.parquet",
			readErr: `decode testdata/files/corrupt_page.parquet: rows 1 to 40, column "car_value": corrupt Parquet data: snappy: corrupt input`},
		{name: "parquet without a column's metadata", path: "testdata/files/no_column_metadata.parquet",
			openErr: `cannot read testdata/files/no_column_metadata.parquet: corrupt metadata: row group 0, column "car_value": missing or corrupt column metadata`},
		{name: "parquet column chunk outside the file", path: "testdata/files/chunk_outside_file.parquet",
			openErr: `cannot read testdata/files/chunk_outside_file.parquet: corrupt metadata: row group 0, column "car_value": -340 bytes at offset 4 do not lie within the file's 4275`},
		{name: "parquet cut short", path: "testdata/files/truncated.parquet",
			openErr: "cannot read testdata/files/truncated.parquet: parquet: file is smaller than indicated metadata size"},
		{name: "parquet with more columns than the limit", path: "testdata/files/valid.parquet", opts: FileOptions{MaxColumns: 5},
			openErr: "cannot read testdata/files/valid.parquet: 11 columns, more than the limit of 5"},
		{name: "csv with an unterminated quote", path: "testdata/files/unterminated_quote.csv",
			openErr: `cannot read testdata/files/unterminated_quote.csv: row 5: parse error on line 6, column 23: extraneous or missing " in quoted-field`},
		{name: "csv record past the limit, in the sample", path: write("long.csv", "a,b\n1,2\n"+strings.Repeat("x", DefaultMaxLineBytes+1)),
			openErr: "row 2: record longer than the limit of 16777216 bytes"},
		{name: "csv record past the limit, after the sample", path: write("long2.csv", "a,b\n1,2\n3,\""+strings.Repeat("x\n", 600)+"\"\n"),
			opts: FileOptions{InferRows: 1, MaxLineBytes: 1000}, readErr: "row 2: record longer than the limit of 1000 bytes"},
		{name: "csv with 100k columns", path: write("wide.csv", wideCSV(100000)),
			openErr: "header: 100000 columns, more than the limit of 10000"},
		{name: "jsonl line past the limit, in the sample", path: write("long.jsonl", `{"a":1}`+"\n"+`{"a":"`+strings.Repeat("x", DefaultMaxLineBytes)+`"}`),
			openErr: "line 2: longer than the limit of 16777216 bytes"},
		{name: "jsonl line past the limit, after the sample", path: write("long2.jsonl", `{"a":1}`+"\n"+`{"a":"`+strings.Repeat("x", 2000)+`"}`),
			opts: FileOptions{InferRows: 1, MaxLineBytes: 1000}, readErr: "line 2: longer than the limit of 1000 bytes"},
		{name: "jsonl with 100k columns", path: write("wide.jsonl", wideJSON(100000)),
			openErr: "line 1: more than the limit of 10000 columns (distinct value paths)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			tt.opts.Mem = mem
			r, err := ReadFile(tt.path, tt.opts)
			if tt.openErr != "" {
				if err == nil {
					r.Close()
					t.Fatalf("ReadFile succeeded, want error containing %q", tt.openErr)
				}
				t.Logf("ReadFile: %v", err)
				if !strings.Contains(err.Error(), tt.openErr) || !strings.HasPrefix(err.Error(), "cannot read ") {
					t.Errorf("error %q, want it to contain %q", err, tt.openErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			defer r.Close()
			for r.Next() {
			}
			t.Logf("Err: %v", r.Err())
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), tt.readErr) || !strings.HasPrefix(err.Error(), "decode ") {
				t.Errorf("Err() = %v, want it to contain %q", err, tt.readErr)
			}
			if r.Next() {
				t.Error("Next after an error returned true")
			}
		})
	}
}

// wideCSV is a CSV file of n columns and one row.
func wideCSV(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "c%d", i)
	}
	b.WriteString("\n")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('1')
	}
	b.WriteString("\n")
	return b.String()
}

// wideJSON is a JSON line with n keys.
func wideJSON(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"c%d":1`, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestReadFileParquetBufferLimit: a buffer beyond maxParquetBuffer (a page whose header
// claims gigabytes, here any page at a limit of 64 bytes) is an error, not an allocation.
func TestReadFileParquetBufferLimit(t *testing.T) {
	defer func(v int) { maxParquetBuffer = v }(maxParquetBuffer)
	maxParquetBuffer = 64
	r, err := ReadFile("testdata/files/valid.parquet", FileOptions{})
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Close()
	}
	const want = `decode testdata/files/valid.parquet: rows 1 to 40, column "car_value": corrupt Parquet data: needs a buffer of`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "more than the limit of 64") {
		t.Errorf("error %v, want %q... more than the limit of 64", err, want)
	}
}

// TestReadFileBoundsLineMemory: a file that is one long line costs about the line limit
// to refuse, not the line.
func TestReadFileBoundsLineMemory(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 20
	for _, name := range []string{"long.csv", "long.jsonl"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			line := strings.Repeat("x", size)
			if strings.HasSuffix(name, ".jsonl") {
				line = `{"a":"` + line + `"}`
			}
			if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r, err := ReadFile(p, FileOptions{MaxLineBytes: 1 << 20})
			if err == nil {
				r.Close()
				t.Fatal("ReadFile succeeded")
			}
			runtime.ReadMemStats(&after)
			t.Logf("%v; %d bytes allocated", err, after.TotalAlloc-before.TotalAlloc)
			if !strings.Contains(err.Error(), "longer than the limit of 1048576 bytes") {
				t.Errorf("error %v", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("refusing a %d-byte line allocated %d bytes, want at most 16 MiB", size, got)
			}
		})
	}
}

// fuzzReadFile reads data as a file of format ext with small limits: it must give
// records that agree with the schema or an error naming the file, never a panic, and
// release all the memory it took unless the Parquet reader panicked mid-read.
func fuzzReadFile(f *testing.F, ext string) {
	seeds, err := filepath.Glob("testdata/files/*" + ext)
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds for %s: %v", ext, err)
	}
	more, _ := filepath.Glob("testdata/*" + ext)
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f"+ext)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		opts := FileOptions{Mem: mem, BatchRows: 7, InferRows: 3, MaxColumns: 64, MaxLineBytes: 4096}
		r, err := ReadFile(p, opts)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cannot read "+p) {
				t.Fatalf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), "corrupt Parquet data") {
				mem.AssertSize(t, 0)
			}
			return
		}
		for r.Next() {
			rec := r.Record()
			if !rec.Schema().Equal(r.Schema()) || rec.NumRows() < 1 || rec.NumRows() > 7 {
				t.Fatalf("record of %d rows with schema %s, reader schema %s", rec.NumRows(), rec.Schema(), r.Schema())
			}
			for _, c := range rec.Columns() {
				if int64(c.Len()) != rec.NumRows() {
					t.Fatalf("column of %d values in a record of %d rows", c.Len(), rec.NumRows())
				}
			}
		}
		err = r.Err()
		if err != nil && !strings.HasPrefix(err.Error(), "decode "+p) {
			t.Fatalf("error %q does not name the file", err)
		}
		r.Close()
		if err == nil || !strings.Contains(err.Error(), "corrupt Parquet data") {
			mem.AssertSize(t, 0)
		}
	})
}

func FuzzReadParquet(f *testing.F) { fuzzReadFile(f, ".parquet") }
func FuzzReadCSV(f *testing.F)     { fuzzReadFile(f, ".csv") }
func FuzzReadJSONL(f *testing.F)   { fuzzReadFile(f, ".jsonl") }
