package backtest

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
	"github.com/driftmon/driftmon/sketch"
)

// InputOptions says which extra columns of a data file an Input reads.
type InputOptions struct {
	// TimeColumn names the column of event times (see ingest.FileOptions.EventTime);
	// empty means none, which suits count windows only.
	TimeColumn string
	// ModelColumn and VersionColumn name String columns holding the model and its
	// version, so one file can hold several models. Empty, or not a column of the file,
	// means one model.
	ModelColumn, VersionColumn string
}

// Input is a data file read for an engine: each record holds the stream's fields under
// their names, plus ingest.ColEventTime, ingest.ColModel and ingest.ColModelVersion when
// the options name those columns. A field is found by its name or, failing that, by its
// configured path, so both a flat training table ("car_value") and JSON lines of the
// inference log itself ("features.car_value") can be read.
type Input struct {
	path   string
	r      *ingest.FileReader
	schema *arrow.Schema
	cols   []int // column in the file's records of each schema field
	cur    arrow.Record
	rows   int64
}

// Open opens the data file at path (Parquet, CSV or JSON lines) for the fields of sc.
// Every field must have a column whose type its kind can read; the error names every
// one that has not.
func Open(path string, sc *config.Stream, opts InputOptions) (*Input, error) {
	r, err := ingest.ReadFile(path, ingest.FileOptions{EventTime: opts.TimeColumn})
	if err != nil {
		return nil, err
	}
	in, err := newInput(path, r, streamColumns(sc), opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	return in, nil
}

// column is a field and where to look for it.
type column struct {
	sketch.Field
	path string // configured path, tried when no column has the field's name
}

// streamColumns lists sc's fields in engine order with their paths.
func streamColumns(sc *config.Stream) []column {
	var cols []column
	for _, f := range engine.StreamFields(sc) {
		c, ok := sc.Features[f.Name]
		if !ok {
			c = sc.Predictions[f.Name]
		}
		cols = append(cols, column{Field: f, path: c.Path})
	}
	return cols
}

func newInput(path string, r *ingest.FileReader, want []column, opts InputOptions) (*Input, error) {
	in := &Input{path: path, r: r}
	src := r.Schema()
	var fields []arrow.Field
	var missing, problems []string
	for _, c := range want {
		idx := src.FieldIndices(c.Name)
		if len(idx) == 0 && c.path != "" {
			idx = src.FieldIndices(c.path)
		}
		if len(idx) == 0 {
			missing = append(missing, c.Name)
			continue
		}
		dt := src.Field(idx[0]).Type
		if !readable(c.Kind, dt) {
			problems = append(problems, fmt.Sprintf("column %s is %s, which cannot be read as %s", c.Name, dt, c.Kind))
			continue
		}
		fields = append(fields, arrow.Field{Name: c.Name, Type: dt, Nullable: true})
		in.cols = append(in.cols, idx[0])
	}
	if len(missing) > 0 {
		problems = append([]string{fmt.Sprintf("no column for %s (columns: %s)", strings.Join(missing, ", "), columnNames(src))}, problems...)
	}
	extra := []struct{ name, col string }{{ingest.ColModel, opts.ModelColumn}, {ingest.ColModelVersion, opts.VersionColumn}}
	for _, x := range extra {
		if x.col == "" {
			continue
		}
		idx := src.FieldIndices(x.col)
		switch {
		case len(idx) == 0:
		case src.Field(idx[0]).Type.ID() != arrow.STRING:
			problems = append(problems, fmt.Sprintf("column %s is %s, want strings", x.col, src.Field(idx[0]).Type))
		default:
			fields = append(fields, arrow.Field{Name: x.name, Type: arrow.BinaryTypes.String, Nullable: true})
			in.cols = append(in.cols, idx[0])
		}
	}
	if opts.TimeColumn != "" {
		idx := src.FieldIndices(ingest.ColEventTime)
		fields = append(fields, arrow.Field{Name: ingest.ColEventTime, Type: arrow.PrimitiveTypes.Int64})
		in.cols = append(in.cols, idx[len(idx)-1]) // ReadFile appends it last
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	in.schema = arrow.NewSchema(fields, nil)
	return in, nil
}

// readable reports whether sketch.Profile.Update reads a column of type dt as kind.
func readable(kind sketch.Kind, dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.FLOAT64, arrow.FLOAT32, arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8,
		arrow.UINT64, arrow.UINT32, arrow.UINT16, arrow.UINT8, arrow.BOOL, arrow.NULL:
		return true
	case arrow.STRING, arrow.LARGE_STRING:
		return kind == sketch.KindCategorical
	case arrow.DICTIONARY:
		d := dt.(*arrow.DictionaryType)
		return kind == sketch.KindCategorical && (d.ValueType.ID() == arrow.STRING || d.ValueType.ID() == arrow.LARGE_STRING)
	}
	return false
}

func columnNames(s *arrow.Schema) string {
	var names []string
	for _, f := range s.Fields() {
		if !strings.HasPrefix(f.Name, "__") {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Name is the file's base name, for messages.
func (in *Input) Name() string { return filepath.Base(in.path) }

// Schema is the schema of every record.
func (in *Input) Schema() *arrow.Schema { return in.schema }

// Next advances to the next record and reports whether there is one; Err then says
// whether the file was read to its end.
func (in *Input) Next() bool {
	if in.cur != nil {
		in.cur.Release()
		in.cur = nil
	}
	if !in.r.Next() {
		return false
	}
	rec := in.r.Record()
	cols := make([]arrow.Array, len(in.cols))
	for i, c := range in.cols {
		cols[i] = rec.Column(c)
	}
	in.cur = array.NewRecord(in.schema, cols, rec.NumRows())
	in.rows += rec.NumRows()
	return true
}

// Record is the current record, valid until the next call to Next or Close.
func (in *Input) Record() arrow.Record { return in.cur }

// Rows is how many rows have been read so far.
func (in *Input) Rows() int64 { return in.rows }

// Err returns the error that stopped Next, or nil at the end of the file.
func (in *Input) Err() error { return in.r.Err() }

// Close releases the current record and closes the file.
func (in *Input) Close() error {
	if in.cur != nil {
		in.cur.Release()
		in.cur = nil
	}
	return in.r.Close()
}
