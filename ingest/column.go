package ingest

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Column returns rec's column name if it has exactly one of that name and it is of
// type A (*array.String, *array.Float64, ...), or nil. The decoders' own columns
// (ColModel, ColEventTime, ...) are read this way; nil means "absent", which each
// reader gives its own meaning (the stream's name for a missing model, say).
func Column[A arrow.Array](rec arrow.Record, name string) A {
	var zero A
	if idx := rec.Schema().FieldIndices(name); len(idx) == 1 {
		if c, ok := rec.Column(idx[0]).(A); ok {
			return c
		}
	}
	return zero
}

// StringColumn is Column for a String column.
func StringColumn(rec arrow.Record, name string) *array.String {
	return Column[*array.String](rec, name)
}
