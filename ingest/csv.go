package ingest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// csvNulls are the CSV cell values read as null (pandas writes missing values as "").
var csvNulls = []string{"", "NA", "N/A", "NULL", "null"}

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
	releaseRecord(&s.cur)
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

func (s *csvSource) Err() error { return s.err }

func (s *csvSource) Release() {
	releaseRecord(&s.cur)
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
