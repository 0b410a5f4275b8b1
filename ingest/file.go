package ingest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// File formats understood by ReadFile.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
)

// Defaults of FileOptions.
const (
	DefaultBatchRows = 8192
	DefaultInferRows = 10000
	// DefaultMaxColumns bounds the columns of a file: a 100,000-column file is refused
	// before any of its rows is read.
	DefaultMaxColumns = 10000
	// DefaultMaxLineBytes bounds a CSV record or a JSON line (16 MiB): a file without
	// newlines is refused at that length instead of being read into memory whole.
	DefaultMaxLineBytes = 16 << 20
)

// Bounds on one record of a FileReader, whatever the options: a batch ends early once
// it holds maxBatchCells cells (rows × columns) or, for CSV and JSON lines, once
// maxBatchBytes of the file went into it. With MaxLineBytes, a record's memory is
// bounded by these and not by what the file holds.
const (
	maxBatchCells = 1 << 22
	maxBatchBytes = 64 << 20
)

// FileOptions configures ReadFile. The zero value reads by extension with defaults.
type FileOptions struct {
	// Format is FormatParquet, FormatCSV or FormatJSONL; empty means by extension:
	// .parquet/.pq, .csv, .jsonl/.ndjson/.json.
	Format string
	// Mem allocates the records; nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// BatchRows is the number of rows per record (the last one may be shorter);
	// 0 means DefaultBatchRows.
	BatchRows int
	// EventTime names the column (Parquet, CSV) or path (JSON lines without Spec) whose
	// values become an extra Int64 column ColEventTime of unix nanoseconds, appended
	// after the file's columns, for backtests that window by event time. Accepted:
	// timestamp and date columns, numbers (unix time, unit guessed as in JSONDecoder),
	// and strings as in JSONDecoder (e.g. "2018-01-01 00:08:43.152", UTC). A null or
	// unparseable value fails the read. Empty means no such column.
	EventTime string
	// Spec, for JSON lines only, decodes every line with a JSONDecoder: records then
	// have Spec.Schema() and EventTime is ignored (Spec.EventTime applies; a line without
	// an event time fails the read). Without Spec the columns are inferred (see ReadFile).
	Spec *Spec
	// InferRows is how many leading CSV rows or JSON lines are sampled to infer column
	// types; 0 means DefaultInferRows, negative means the whole file.
	InferRows int
	// MaxColumns refuses a file with more columns (Parquet leaf columns, CSV header
	// cells, JSON leaf paths inferred); 0 means DefaultMaxColumns.
	MaxColumns int
	// MaxLineBytes refuses a CSV record or JSON line that is longer; 0 means
	// DefaultMaxLineBytes.
	MaxLineBytes int
}

// FileReader reads a file as a sequence of Arrow records with one schema. Use it like an
// arrow RecordReader:
//
//	for r.Next() { use(r.Record()) }
//	if err := r.Err(); err != nil { ... }
//	r.Close()
//
// It is not safe for concurrent use.
type FileReader struct {
	path      string
	src       recordSource
	schema    *arrow.Schema
	timeCol   int // index of the EventTime column in src records, or -1
	timeName  string
	mem       memory.Allocator
	closers   []func() error
	cur       arrow.Record // owned; released by Next and Close
	rowsSoFar int64
	err       error
}

// recordSource is what the format-specific readers have in common (a subset of
// array.RecordReader).
type recordSource interface {
	Next() bool
	Record() arrow.Record
	Err() error
	Release()
}

// ReadFile opens a Parquet, CSV or JSON lines file for reading as Arrow records, for
// baselines, backtests and tests.
//
//   - Parquet: columns keep their Arrow types as read by pqarrow (strings are String,
//     not dictionaries).
//   - CSV: the first row is the header. Types are inferred from the first InferRows
//     rows: a column whose non-null cells all parse as numbers is Float64 (integers too,
//     so that a later "0.5" cannot break an integer column), one whose cells are all
//     true/false (any case) is Boolean, anything else String. Cells "", "NA", "N/A",
//     "NULL" and "null" are null. A later cell that does not fit its column fails the read.
//   - JSON lines: with opts.Spec, each non-blank line is decoded by a JSONDecoder. Without,
//     a Spec is inferred from the first InferRows lines: every scalar leaf becomes a
//     column named by its dotted path ("features.car_value"), Float64 if it only ever
//     held numbers, String otherwise (booleans → "true"/"false"); arrays, keys containing
//     dots and names starting with "__" are skipped; a leaf that first appears after the
//     sample is ignored. Either way a line that cannot be decoded fails the read, naming
//     its line number.
func ReadFile(path string, opts FileOptions) (*FileReader, error) {
	if opts.Mem == nil {
		opts.Mem = memory.DefaultAllocator
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.InferRows == 0 {
		opts.InferRows = DefaultInferRows
	}
	if opts.MaxColumns <= 0 {
		opts.MaxColumns = DefaultMaxColumns
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	format := opts.Format
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".parquet", ".pq":
			format = FormatParquet
		case ".csv":
			format = FormatCSV
		case ".jsonl", ".ndjson", ".json":
			format = FormatJSONL
		default:
			return nil, fmt.Errorf("cannot read %s: unknown file extension (want .parquet, .csv or .jsonl)", path)
		}
	}
	r := &FileReader{path: path, mem: opts.Mem, timeCol: -1}
	var err error
	switch format {
	case FormatParquet:
		err = r.openParquet(opts)
	case FormatCSV:
		err = r.openCSV(opts)
	case FormatJSONL:
		err = r.openJSONL(opts)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if opts.EventTime != "" && format != FormatJSONL {
		idx := r.schema.FieldIndices(opts.EventTime)
		if len(idx) == 0 {
			r.Close()
			return nil, fmt.Errorf("cannot read %s: event time column %q not found", path, opts.EventTime)
		}
		r.timeCol, r.timeName = idx[0], opts.EventTime
		fields := append(append([]arrow.Field(nil), r.schema.Fields()...), arrow.Field{Name: ColEventTime, Type: arrow.PrimitiveTypes.Int64})
		md := r.schema.Metadata()
		r.schema = arrow.NewSchema(fields, &md)
	}
	return r, nil
}

// releaseRecord releases *rec, the record a Next returned before, if any, and clears it.
func releaseRecord(rec *arrow.Record) {
	if *rec != nil {
		(*rec).Release()
		*rec = nil
	}
}

// openFile opens the file for reading; Close closes it.
func (r *FileReader) openFile() (*os.File, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, f.Close)
	return f, nil
}

// batchRows is the rows per record for ncols columns: rows, but fewer when the record
// would otherwise hold more than maxBatchCells cells.
func batchRows(rows, ncols int) int {
	return max(1, min(rows, maxBatchCells/max(ncols, 1)))
}

// Schema returns the schema of every record: the file's columns, plus ColEventTime at
// the end when FileOptions.EventTime is set (for JSON lines with a Spec: Spec.Schema()).
func (r *FileReader) Schema() *arrow.Schema { return r.schema }

// Next advances to the next record and reports whether there is one. After it returns
// false, Err says whether the file was read to its end.
func (r *FileReader) Next() bool {
	releaseRecord(&r.cur)
	if r.err != nil || r.src == nil {
		return false
	}
	if !r.src.Next() {
		if err := r.src.Err(); err != nil && !errors.Is(err, io.EOF) {
			r.err = fmt.Errorf("decode %s: %w", r.path, err)
		}
		return false
	}
	rec := r.src.Record()
	if r.timeCol < 0 {
		rec.Retain()
		r.cur = rec
	} else {
		cur, err := r.withEventTime(rec)
		if err != nil {
			r.err = fmt.Errorf("decode %s: %w", r.path, err)
			return false
		}
		r.cur = cur
	}
	r.rowsSoFar += r.cur.NumRows()
	return true
}

// Record returns the current record. It is valid until the next call to Next or Close;
// Retain it to keep it longer.
func (r *FileReader) Record() arrow.Record { return r.cur }

// Err returns the error that stopped Next, or nil at the end of the file.
func (r *FileReader) Err() error { return r.err }

// Close releases the current record and closes the file.
func (r *FileReader) Close() error {
	releaseRecord(&r.cur)
	if r.src != nil {
		r.src.Release()
		r.src = nil
	}
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// withEventTime returns rec with ColEventTime appended, computed from the EventTime column.
func (r *FileReader) withEventTime(rec arrow.Record) (arrow.Record, error) {
	b := array.NewInt64Builder(r.mem)
	defer b.Release()
	b.Reserve(int(rec.NumRows()))
	col := rec.Column(r.timeCol)
	for i := 0; i < col.Len(); i++ {
		row := r.rowsSoFar + int64(i) + 1
		if col.IsNull(i) {
			return nil, fmt.Errorf("row %d: event time column %q is null", row, r.timeName)
		}
		var ns int64
		ok := true
		switch a := col.(type) {
		case *array.Timestamp:
			unit := a.DataType().(*arrow.TimestampType).Unit
			t := a.Value(i).ToTime(unit)
			if y := t.Year(); y < 1678 || y > 2261 {
				ok = false
			}
			ns = t.UnixNano()
		case *array.Date32, *array.Date64, *array.String, *array.LargeString,
			*array.Float64, *array.Float32, *array.Int64, *array.Int32, *array.Uint64, *array.Uint32:
			ns, ok, _ = arrowTime(col, i)
		default:
			return nil, fmt.Errorf("event time column %q has type %s, want a timestamp, date, number or string", r.timeName, col.DataType())
		}
		if !ok {
			return nil, fmt.Errorf("row %d: event time column %q: not a time within 1678..2262", row, r.timeName)
		}
		b.Append(ns)
	}
	times := b.NewArray()
	defer times.Release()
	cols := append(append(make([]arrow.Array, 0, rec.NumCols()+1), rec.Columns()...), times)
	return array.NewRecord(r.schema, cols, rec.NumRows()), nil
}
