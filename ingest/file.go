package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// csvNulls are the CSV cell values read as null (pandas writes missing values as "").
var csvNulls = []string{"", "NA", "N/A", "NULL", "null"}

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

// openFile opens the file for reading; Close closes it.
func (r *FileReader) openFile() (*os.File, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, f.Close)
	return f, nil
}

func (r *FileReader) openCSV(opts FileOptions) error {
	f, err := r.openFile()
	if err != nil {
		return err
	}
	schema, err := inferCSVSchema(f, opts)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	src := &csvSource{
		lim:    &recordLimiter{r: f, max: opts.MaxLineBytes},
		schema: schema,
		b:      array.NewRecordBuilder(opts.Mem, schema),
		batch:  batchRows(opts.BatchRows, schema.NumFields()),
	}
	src.cr = newCSVReader(src.lim)
	if _, err := src.cr.Read(); err != nil { // the header, read again
		src.b.Release()
		return fmt.Errorf("header: %w", err)
	}
	src.cols = make([]csvColumn, schema.NumFields())
	for i := range src.cols {
		switch b := src.b.Field(i).(type) {
		case *array.Float64Builder:
			src.cols[i].f = b
		case *array.BooleanBuilder:
			src.cols[i].b = b
		case *array.StringBuilder:
			src.cols[i].s = b
		}
	}
	r.src, r.schema = src, schema
	return nil
}

// newCSVReader reads records of at most as many fields as the header has.
func newCSVReader(rd io.Reader) *csv.Reader {
	cr := csv.NewReader(rd)
	cr.ReuseRecord = true
	return cr
}

// batchRows is the rows per record for ncols columns: rows, but fewer when the record
// would otherwise hold more than maxBatchCells cells.
func batchRows(rows, ncols int) int {
	return max(1, min(rows, maxBatchCells/max(ncols, 1)))
}

// inferCSVSchema reads the header and up to opts.InferRows rows (all if negative) and
// picks a type per column: Float64, Boolean or String.
func inferCSVSchema(rd io.Reader, opts FileOptions) (*arrow.Schema, error) {
	cr := newCSVReader(&recordLimiter{r: rd, max: opts.MaxLineBytes})
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty CSV file: no header")
		}
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(header) > opts.MaxColumns {
		return nil, fmt.Errorf("header: %d columns, more than the limit of %d", len(header), opts.MaxColumns)
	}
	names := append([]string(nil), header...)
	const (
		canFloat = 1 << iota
		canBool
	)
	can := make([]int, len(names))
	seen := make([]bool, len(names))
	for i := range can {
		can[i] = canFloat | canBool
	}
	for row := 1; opts.InferRows < 0 || row <= opts.InferRows; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", row, err)
		}
		for i, v := range rec {
			if isCSVNull(v) {
				continue
			}
			seen[i] = true
			if can[i]&canFloat != 0 {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					can[i] &^= canFloat
				}
			}
			if can[i]&canBool != 0 && !isCSVBool(v) {
				can[i] &^= canBool
			}
		}
	}
	fields := make([]arrow.Field, len(names))
	for i, name := range names {
		var dt arrow.DataType = arrow.BinaryTypes.String
		switch {
		case !seen[i]:
		case can[i]&canFloat != 0:
			dt = arrow.PrimitiveTypes.Float64
		case can[i]&canBool != 0:
			dt = arrow.FixedWidthTypes.Boolean
		}
		fields[i] = arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil), nil
}

// recordLimiter passes a CSV file through, failing once one record (a line, or lines
// inside quotes) is longer than max bytes, so that encoding/csv, which holds a record
// in memory whole, never holds more. Quotes are counted as the CSV grammar pairs them
// (an escaped "" toggles twice); a bare quote the CSV reader rejects anyway.
type recordLimiter struct {
	r       io.Reader
	max     int
	n       int // bytes of the current record so far
	inQuote bool
	read    int64 // bytes read in all
	err     error // returned by the next Read: the limit was passed
}

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		switch {
		case c == '"':
			l.inQuote = !l.inQuote
		case c == '\n' && !l.inQuote:
			l.n = 0
			continue
		}
		if l.n++; l.n > l.max {
			// Hand over what comes before, so the records before this one are read.
			l.err = fmt.Errorf("record longer than the limit of %d bytes", l.max)
			l.read += int64(i)
			return i, nil
		}
	}
	l.read += int64(n)
	return n, err
}

// csvColumn is the builder of a CSV column: exactly one is set.
type csvColumn struct {
	f *array.Float64Builder
	b *array.BooleanBuilder
	s *array.StringBuilder
}

// csvSource converts CSV records into Arrow records of the inferred schema, naming the
// row and column of a cell that does not fit its column.
type csvSource struct {
	cr     *csv.Reader
	lim    *recordLimiter
	schema *arrow.Schema
	cols   []csvColumn
	b      *array.RecordBuilder
	batch  int
	row    int64 // data rows read so far (the header is not one)
	cur    arrow.Record
	err    error
}

func (s *csvSource) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.err != nil || s.b == nil {
		return false
	}
	n, start := 0, s.lim.read
	for n < s.batch && s.lim.read-start < maxBatchBytes {
		rec, err := s.cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.err = fmt.Errorf("row %d: %w", s.row+1, err)
			return false
		}
		s.row++
		for i, v := range rec {
			if err := s.append(i, v); err != nil {
				s.err = fmt.Errorf("row %d, column %q: %w", s.row, s.schema.Field(i).Name, err)
				return false
			}
		}
		n++
	}
	if n == 0 {
		return false
	}
	s.cur = s.b.NewRecord()
	return true
}

// append adds cell v to column i.
func (s *csvSource) append(i int, v string) error {
	c := &s.cols[i]
	null := isCSVNull(v)
	switch {
	case c.f != nil:
		if null {
			c.f.AppendNull()
			return nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%s is not a number (the column held only numbers in the rows sampled for its type)", quoteCell(v))
		}
		c.f.Append(f)
	case c.b != nil:
		if null {
			c.b.AppendNull()
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s is not true or false (the column held only those in the rows sampled for its type)", quoteCell(v))
		}
		c.b.Append(b)
	case null:
		c.s.AppendNull()
	default:
		c.s.Append(v)
	}
	return nil
}

// quoteCell quotes a cell for an error message, cut to 64 bytes.
func quoteCell(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}

func (s *csvSource) Record() arrow.Record { return s.cur }
func (s *csvSource) Err() error           { return s.err }
func (s *csvSource) Release() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.b != nil {
		s.b.Release()
		s.b = nil
	}
}

func isCSVNull(v string) bool {
	for _, n := range csvNulls {
		if v == n {
			return true
		}
	}
	return false
}

// isCSVBool accepts the spellings of true and false that strconv.ParseBool (which reads
// a Boolean column's cells) accepts, except "0", "1", "t" and "f".
func isCSVBool(v string) bool {
	switch v {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return true
	}
	return false
}

func (r *FileReader) openJSONL(opts FileOptions) error {
	f, err := r.openFile()
	if err != nil {
		return err
	}
	src := &jsonlSource{path: r.path}
	if opts.Spec != nil {
		src.spec = *opts.Spec
		src.spec.RequireEventTime = src.spec.EventTime != ""
	} else {
		spec, err := inferJSONSpec(f, opts)
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if opts.EventTime != "" && !slices.ContainsFunc(spec.Fields, func(f Field) bool { return f.Path == opts.EventTime }) {
			return fmt.Errorf("event time path %q not found in the first lines", opts.EventTime)
		}
		spec.EventTime = opts.EventTime
		spec.RequireEventTime = opts.EventTime != ""
		src.spec, src.inferred, src.keepTime = spec, true, opts.EventTime != ""
	}
	src.spec.MaxMessageBytes = -1
	dec, err := NewJSONDecoder(src.spec, opts.Mem)
	if err != nil {
		return err
	}
	src.dec = dec
	r.closers = append(r.closers, func() error { dec.Release(); return nil })
	src.schema = dec.Schema()
	if src.inferred {
		// Drop the bookkeeping columns: the caller asked for the file's columns, plus
		// ColEventTime at the end as for the other formats.
		fields := append([]arrow.Field(nil), src.schema.Fields()[3:]...)
		if src.keepTime {
			fields = append(fields, src.schema.Field(0))
		}
		src.schema = arrow.NewSchema(fields, nil)
	}
	src.batch = batchRows(opts.BatchRows, src.schema.NumFields())
	src.sc = newLineScanner(f, opts.MaxLineBytes)
	src.maxLine = opts.MaxLineBytes
	r.src, r.schema = src, src.schema
	return nil
}

// Schema returns the schema of every record: the file's columns, plus ColEventTime at
// the end when FileOptions.EventTime is set (for JSON lines with a Spec: Spec.Schema()).
func (r *FileReader) Schema() *arrow.Schema { return r.schema }

// Next advances to the next record and reports whether there is one. After it returns
// false, Err says whether the file was read to its end.
func (r *FileReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
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
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
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

// jsonlSource decodes JSON lines in batches with a JSONDecoder.
type jsonlSource struct {
	path     string
	spec     Spec
	inferred bool // spec was inferred: drop the bookkeeping columns
	keepTime bool // inferred with an event time: keep ColEventTime, moved to the end
	schema   *arrow.Schema
	dec      *JSONDecoder
	sc       *bufio.Scanner
	maxLine  int
	batch    int
	line     int // lines read so far
	arena    []byte
	ends     []int
	lines    []int
	msgs     []Message
	cur      arrow.Record
	err      error
}

func (s *jsonlSource) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.err != nil {
		return false
	}
	s.arena, s.ends, s.lines = s.arena[:0], s.ends[:0], s.lines[:0]
	for len(s.ends) < s.batch && len(s.arena) < maxBatchBytes && s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		s.arena = append(s.arena, b...)
		s.ends = append(s.ends, len(s.arena))
		s.lines = append(s.lines, s.line)
	}
	if err := s.sc.Err(); err != nil {
		s.err = lineError(s.line+1, err, s.maxLine)
		return false
	}
	if len(s.ends) == 0 {
		return false
	}
	s.msgs = s.msgs[:0]
	start := 0
	for _, end := range s.ends {
		s.msgs = append(s.msgs, Message{Value: s.arena[start:end]})
		start = end
	}
	rec, rej := s.dec.Decode(s.msgs)
	if len(rej) > 0 {
		rec.Release()
		s.err = fmt.Errorf("line %d: %s: %w", s.lines[rej[0].Index], rej[0].Reason, rej[0].Err)
		return false
	}
	if !s.inferred {
		s.cur = rec
		return true
	}
	defer rec.Release()
	cols := append(make([]arrow.Array, 0, rec.NumCols()), rec.Columns()[3:]...)
	if s.keepTime {
		cols = append(cols, rec.Column(0))
	}
	s.cur = array.NewRecord(s.schema, cols, rec.NumRows())
	return true
}

func (s *jsonlSource) Record() arrow.Record { return s.cur }
func (s *jsonlSource) Err() error           { return s.err }
func (s *jsonlSource) Release() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
}

// newLineScanner scans lines of at most maxLine bytes.
func newLineScanner(rd io.Reader, maxLine int) *bufio.Scanner {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine+1)), maxLine+1) // +1: the newline
	return sc
}

// lineError is the error for line n of a scan that failed with err.
func lineError(n int, err error, maxLine int) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than the limit of %d bytes", n, maxLine)
	}
	return fmt.Errorf("line %d: %w", n, err)
}

// inferJSONSpec samples up to opts.InferRows non-blank lines (all if negative) and
// returns a Spec with one field per scalar leaf path, in first-seen order, failing
// past opts.MaxColumns paths.
func inferJSONSpec(rd io.Reader, opts FileOptions) (Spec, error) {
	n := opts.InferRows
	type leaf struct {
		path    string
		numeric bool // only numbers (or nulls) so far
		nonNull bool
	}
	var leaves []*leaf
	byPath := map[string]*leaf{}
	sc := newLineScanner(rd, opts.MaxLineBytes)
	line := 0
	for sampled := 0; (n < 0 || sampled < n) && sc.Scan(); {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		sampled++
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var walk func(prefix string, depth int) error
		walk = func(prefix string, depth int) error {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if depth > maxDepth {
				return errors.New("nesting too deep")
			}
			switch v := tok.(type) {
			case json.Delim:
				if v == '[' {
					for dec.More() {
						if err := walk("", depth+1); err != nil {
							return err
						}
					}
					_, err := dec.Token()
					return err
				}
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key := kt.(string)
					p := ""
					if prefix != "" || depth == 0 {
						p = key
						if prefix != "" {
							p = prefix + "." + key
						}
						if key == "" || strings.Contains(key, ".") || strings.HasPrefix(p, "__") {
							p = ""
						}
					}
					if err := walk(p, depth+1); err != nil {
						return err
					}
				}
				_, err := dec.Token()
				return err
			default:
				if prefix == "" {
					return nil
				}
				l := byPath[prefix]
				if l == nil {
					if len(leaves) == opts.MaxColumns {
						return fmt.Errorf("more than the limit of %d columns (distinct value paths)", opts.MaxColumns)
					}
					l = &leaf{path: prefix, numeric: true}
					byPath[prefix] = l
					leaves = append(leaves, l)
				}
				if v != nil {
					l.nonNull = true
					if _, isNum := v.(json.Number); !isNum {
						l.numeric = false
					}
				}
				return nil
			}
		}
		if b[0] != '{' {
			return Spec{}, fmt.Errorf("line %d: not a JSON object", line)
		}
		if err := walk("", 0); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Spec{}, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Spec{}, lineError(line+1, err, opts.MaxLineBytes)
	}
	var spec Spec
	for _, l := range leaves {
		typ := String
		if l.numeric && l.nonNull {
			typ = Number
		}
		spec.Fields = append(spec.Fields, Field{Name: l.path, Path: l.path, Type: typ})
	}
	if len(spec.Fields) == 0 {
		return Spec{}, errors.New("no JSON values found to infer columns from")
	}
	return spec, nil
}
