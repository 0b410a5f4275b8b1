package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// ipcMemoryBudget bounds the memory reading one message may take (buffers, including
// decompressed ones), so that a hostile length field cannot exhaust memory.
const ipcMemoryBudget = 256 << 20

// ArrowIPCDecoder decodes messages that each hold one Arrow IPC stream (a schema, then
// any number of record batches, optionally ended by the end-of-stream marker) into
// Arrow records whose schema is Spec.Schema(). It is meant for producers that already
// batch: a message contributes all the rows of all its batches.
//
// A path (prefixed by Spec.Envelope, if any) names the first column found by these rules,
// in order:
//  1. a top-level column whose name is the whole dotted path ("features.car_value");
//  2. struct columns followed field by field ("features" → "car_value");
//  3. a top-level column whose name is the path's last segment ("car_value"), for
//     producers that flatten their events.
//
// A path that matches no column is null in every row. Columns are converted as the JSON
// decoder converts the values they hold:
//   - Number fields: every integer, floating-point and decimal type, boolean (1/0), and
//     dictionaries of those. A float32 or float16 is widened through its shortest
//     decimal form (0.1f → 0.1).
//   - String fields (also model and model version): string, large string, string view,
//     boolean ("true"/"false"), integers (decimal digits), floats (shortest decimal),
//     decimals, and dictionaries of those. Invalid UTF-8 is malformed.
//   - Event time: timestamp (any unit; the zone does not matter, the values are UTC),
//     date32, date64; integers and floats with the JSON decoder's unit heuristic;
//     strings as the JSON decoder parses them; dictionaries of those. Null →
//     Message.Time (bad_time with Spec.RequireEventTime).
//   - A null-typed column is null. A null struct makes its fields null.
//
// A message is accepted or rejected as a whole: a column of any other type is
// wrong_type (bad_time for the event time) for all of the message's rows, a row whose
// event time is not a time within int64 nanoseconds is bad_time for the message, and
// bytes that are not a complete IPC stream (truncated, trailing data, corrupt metadata
// or buffers, more rows than its bytes can hold, more than 256 MiB of memory to read it)
// are malformed, as is invalid UTF-8. A stream with a schema and no batches is accepted
// and adds no rows.
//
// An ArrowIPCDecoder reuses its builders and scratch buffers between calls and is
// therefore not safe for concurrent use; use one per goroutine. Call Release when done.
type ArrowIPCDecoder struct {
	decoderBase
	paths []string // per slot: the dotted path including the envelope, "" for none

	// Scratch for the current message, appended to the builders only when all of it is good.
	cols []ipcCol // per slot
	dict ipcCol   // values of a dictionary
	mask []bool   // per row of the current batch: all enclosing structs are valid
	srcs []ipcSource
	rows int
	// schemaMeta is the schema message of the stream srcs was resolved for: a producer
	// sends the same schema in every message, and resolving it again is wasted work.
	schemaMeta []byte

	// frames serves the current message's IPC messages to the reader without copying
	// them, and arena holds the buffers the reader copies out of their bodies; both are
	// reused from message to message.
	frames ipcFrames
	arena  budgetAllocator
}

// ipcSource is the column a slot reads in the current stream.
type ipcSource struct {
	path []int // field index at the top level, then in each struct; nil: no column
	typ  arrow.DataType
}

// NewArrowIPCDecoder validates spec and returns a decoder that allocates the records it
// returns from mem (memory.DefaultAllocator when nil). Messages are read with Go memory
// that the garbage collector reclaims, whatever happens inside a corrupt message.
func NewArrowIPCDecoder(spec Spec, mem memory.Allocator) (*ArrowIPCDecoder, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create Arrow IPC decoder: %w", err)
	}
	d := &ArrowIPCDecoder{decoderBase: newDecoderBase(spec, mem)}
	d.paths = make([]string, len(d.slots))
	for i, s := range d.slots {
		if s.path != "" && spec.Envelope != "" {
			d.paths[i] = spec.Envelope + "." + s.path
		} else {
			d.paths[i] = s.path
		}
	}
	d.cols = make([]ipcCol, len(d.slots))
	d.srcs = make([]ipcSource, len(d.slots))
	return d, nil
}

// Decode turns msgs into one record holding the rows of the good messages, in order,
// and reports every other message as Rejected (in order, with its index in msgs). The
// record is never nil (it may have zero rows) and must be released by the caller.
func (d *ArrowIPCDecoder) Decode(msgs []Message) (arrow.Record, []Rejected) {
	var rejected []Rejected
	for i := range msgs {
		if reason, err := d.decodeMessage(&msgs[i]); err != nil {
			rejected = append(rejected, Rejected{Index: i, Reason: reason, Err: err})
			continue
		}
		d.commit()
	}
	return d.out.rb.NewRecord(), rejected
}

// decodeMessage reads every batch of one message into the scratch columns.
func (d *ArrowIPCDecoder) decodeMessage(m *Message) (reason Reason, err error) {
	b := m.Value
	if err := d.checkSize(b); err != nil {
		return ReasonTooLarge, err
	}
	schemaMeta, err := checkIPCFraming(b)
	if err != nil {
		return ReasonMalformed, fmt.Errorf("decode message: not an Arrow IPC stream: %w", err)
	}
	for i := range d.cols {
		d.cols[i].reset()
	}
	d.rows = 0
	// The IPC reader trusts the lengths and offsets inside the buffers; a corrupt one
	// makes it, or the arrays it builds, index out of range. Nothing has reached the
	// builders yet, so the message can simply be dropped.
	defer func() {
		if p := recover(); p != nil {
			reason, err = ReasonMalformed, fmt.Errorf("decode message: corrupt Arrow IPC data: %v", p)
		}
	}()
	d.arena.reset()
	d.frames = ipcFrames{b: b}
	rd, err := ipc.NewReaderFromMessageReader(&d.frames, ipc.WithAllocator(&d.arena))
	if err != nil {
		return ReasonMalformed, fmt.Errorf("decode message: %w", err)
	}
	defer rd.Release()
	if !bytes.Equal(schemaMeta, d.schemaMeta) {
		d.schemaMeta = d.schemaMeta[:0]
		if reason, err := d.resolve(rd.Schema()); err != nil {
			return reason, err
		}
		d.schemaMeta = append(d.schemaMeta, schemaMeta...)
	}
	for rd.Next() {
		rec := rd.Record()
		n := int(rec.NumRows())
		// Every row takes at least a bit of some buffer; more rows than that is a lie
		// that would otherwise cost a long loop of nulls. And the scratch of a message
		// (about 16 bytes per row and slot) stays within the memory budget too.
		if n < 0 || d.rows+n > 8*len(b) || (d.rows+n)*16*len(d.slots) > ipcMemoryBudget {
			return ReasonMalformed, fmt.Errorf("decode message: %d rows in %d bytes is more than a message may hold", d.rows+n, len(b))
		}
		if reason, err := d.batch(rec, n); err != nil {
			return reason, err
		}
		d.rows += n
	}
	if err := rd.Err(); err != nil {
		return ReasonMalformed, fmt.Errorf("decode message: %w", err)
	}
	// Null event times fall back to the Kafka time.
	tc := &d.cols[slotEventTime]
	fallback := m.kafkaTime()
	for i, ok := range tc.valid {
		if !ok {
			if d.spec.RequireEventTime {
				return ReasonBadTime, fmt.Errorf("decode %q: row %d: event time is null or absent", d.spec.EventTime, i)
			}
			tc.ns[i] = fallback
		}
	}
	return "", nil
}

// resolve finds the column of every slot in schema and checks its type.
func (d *ArrowIPCDecoder) resolve(schema *arrow.Schema) (Reason, error) {
	for i, s := range d.slots {
		src := &d.srcs[i]
		src.path, src.typ = src.path[:0], nil
		if s.path == "" {
			src.path = nil
			continue
		}
		src.path, src.typ = findColumn(schema, d.paths[i], src.path)
		if src.typ == nil {
			continue
		}
		if !convertible(s.typ, src.typ) {
			reason := ReasonWrongType
			if s.typ == slotTime {
				reason = ReasonBadTime
			}
			return reason, fmt.Errorf("decode %q: column of type %s cannot be a %s", s.path, src.typ, slotTypeName(s.typ))
		}
	}
	return "", nil
}

func slotTypeName(t slotType) string {
	switch t {
	case slotNumber:
		return "number"
	case slotTime:
		return "time"
	}
	return "string"
}

// findColumn resolves a dotted path by the rules of ArrowIPCDecoder, appending the field
// indices to idx. The type is nil when no column matches.
func findColumn(schema *arrow.Schema, path string, idx []int) ([]int, arrow.DataType) {
	if is := schema.FieldIndices(path); len(is) > 0 {
		return append(idx, is[0]), schema.Field(is[0]).Type
	}
	segs := strings.Split(path, ".")
	if len(segs) > 1 {
		if is := schema.FieldIndices(segs[0]); len(is) > 0 {
			path := append(idx, is[0])
			typ := schema.Field(is[0]).Type
			for _, seg := range segs[1:] {
				st, ok := typ.(*arrow.StructType)
				if !ok {
					typ = nil
					break
				}
				j, ok := st.FieldIdx(seg)
				if !ok {
					typ = nil
					break
				}
				path, typ = append(path, j), st.Field(j).Type
			}
			if typ != nil {
				return path, typ
			}
		}
		if is := schema.FieldIndices(segs[len(segs)-1]); len(is) > 0 {
			return append(idx[:0], is[0]), schema.Field(is[0]).Type
		}
	}
	return idx[:0], nil
}

// convertible reports whether a column of type dt can fill a slot of type t.
func convertible(t slotType, dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.NULL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return true
	case arrow.BOOL, arrow.DECIMAL128, arrow.DECIMAL256:
		return t != slotTime
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return t != slotNumber
	case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		return t == slotTime
	case arrow.DICTIONARY:
		vt := dt.(*arrow.DictionaryType).ValueType
		return vt.ID() != arrow.DICTIONARY && convertible(t, vt)
	}
	return false
}

// batch converts the n rows of one record batch into the scratch columns.
func (d *ArrowIPCDecoder) batch(rec arrow.Record, n int) (Reason, error) {
	for i, s := range d.slots {
		col := &d.cols[i]
		src := d.srcs[i]
		if src.typ == nil {
			for range n {
				col.appendNull(s.typ)
			}
			continue
		}
		// Follow the struct path, noting rows where an enclosing struct is null.
		arr := rec.Column(src.path[0])
		d.mask = d.mask[:0]
		for _, j := range src.path[1:] {
			if arr.NullN() > 0 {
				if len(d.mask) == 0 {
					d.mask = slices.Grow(d.mask[:0], n)[:n]
					for r := range d.mask {
						d.mask[r] = true
					}
				}
				for r := range n {
					d.mask[r] = d.mask[r] && arr.IsValid(r)
				}
			}
			arr = arr.(*array.Struct).Field(j)
		}
		if arr.Len() != n {
			return ReasonMalformed, fmt.Errorf("decode %q: column has %d values for %d rows", s.path, arr.Len(), n)
		}
		if err := d.convert(col, s.typ, arr, d.mask); err != nil {
			reason := ReasonMalformed
			var te *ipcTimeError
			if errors.As(err, &te) {
				reason = ReasonBadTime
			}
			return reason, fmt.Errorf("decode %q: row %d: %w", s.path, d.rows+len(col.valid), err)
		}
	}
	return "", nil
}

// commit appends the scratch rows of the current message to the builders.
func (d *ArrowIPCDecoder) commit() {
	out := d.out
	out.timeB.AppendValues(d.cols[slotEventTime].ns, nil)
	appendStrings(out.modelB, &d.cols[slotModel])
	appendStrings(out.versB, &d.cols[slotModelVersion])
	for i := range d.spec.Fields {
		col := &d.cols[slotFirstField+i]
		if nb := out.numB[i]; nb != nil {
			nb.AppendValues(col.num, col.validity())
			continue
		}
		appendStrings(out.strB[i], col)
	}
}

func appendStrings(b *array.StringBuilder, col *ipcCol) {
	b.Reserve(len(col.valid))
	// ReserveData grows to exactly what is asked; ask for at least double so that
	// appending message after message stays linear.
	if b.DataLen()+len(col.data) > b.DataCap() {
		b.ReserveData(max(len(col.data), b.DataLen()))
	}
	start := 0
	for i, ok := range col.valid {
		end := col.ends[i]
		if ok {
			b.BinaryBuilder.Append(col.data[start:end])
		} else {
			b.AppendNull()
		}
		start = end
	}
}
