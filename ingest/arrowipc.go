package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

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
	spec   Spec
	schema *arrow.Schema
	maxLen int
	slots  []slot
	paths  []string // per slot: the dotted path including the envelope, "" for none
	out    *rowBuilder

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

// ipcCol holds the converted values of one slot for the rows read so far.
type ipcCol struct {
	valid []bool
	nulls int       // false entries in valid
	num   []float64 // Number slots
	ns    []int64   // the event-time slot
	data  []byte    // String slots: values back to back ...
	ends  []int     // ... each ending here
	buf   []byte
}

func (c *ipcCol) reset() {
	c.valid, c.num, c.ns, c.data, c.ends = c.valid[:0], c.num[:0], c.ns[:0], c.data[:0], c.ends[:0]
	c.nulls = 0
}

// validity returns valid for an Arrow builder: nil when every value is valid, which
// builders append without a loop.
func (c *ipcCol) validity() []bool {
	if c.nulls == 0 {
		return nil
	}
	return c.valid
}

// appendValid appends n true validity entries.
func (c *ipcCol) appendValid(n int) {
	c.valid = slices.Grow(c.valid, n)
	for range n {
		c.valid = append(c.valid, true)
	}
}

func (c *ipcCol) appendNull(typ slotType) {
	c.nulls++
	c.valid = append(c.valid, false)
	switch typ {
	case slotNumber:
		c.num = append(c.num, 0)
	case slotTime:
		c.ns = append(c.ns, 0)
	default:
		c.ends = append(c.ends, len(c.data))
	}
}

func (c *ipcCol) appendNum(v float64) {
	c.valid = append(c.valid, true)
	c.num = append(c.num, v)
}

func (c *ipcCol) appendTime(ns int64) {
	c.valid = append(c.valid, true)
	c.ns = append(c.ns, ns)
}

func (c *ipcCol) appendStr(s []byte) {
	c.valid = append(c.valid, true)
	c.data = append(c.data, s...)
	c.ends = append(c.ends, len(c.data))
}

// appendFrom appends row i of src, a column of the same slot type.
func (c *ipcCol) appendFrom(src *ipcCol, typ slotType, i int) {
	if !src.valid[i] {
		c.appendNull(typ)
		return
	}
	switch typ {
	case slotNumber:
		c.appendNum(src.num[i])
	case slotTime:
		c.appendTime(src.ns[i])
	default:
		start := 0
		if i > 0 {
			start = src.ends[i-1]
		}
		c.appendStr(src.data[start:src.ends[i]])
	}
}

// NewArrowIPCDecoder validates spec and returns a decoder that allocates the records it
// returns from mem (memory.DefaultAllocator when nil). Messages are read with Go memory
// that the garbage collector reclaims, whatever happens inside a corrupt message.
func NewArrowIPCDecoder(spec Spec, mem memory.Allocator) (*ArrowIPCDecoder, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create Arrow IPC decoder: %w", err)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	spec.Fields = append([]Field(nil), spec.Fields...)
	d := &ArrowIPCDecoder{spec: spec, schema: spec.Schema(), maxLen: maxMessageBytes(spec)}
	_, d.slots = specSlots(spec)
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
	d.out = newRowBuilder(spec, d.schema, mem)
	return d, nil
}

// Schema returns the schema of the records Decode returns.
func (d *ArrowIPCDecoder) Schema() *arrow.Schema { return d.schema }

// Release frees the decoder's builders. The decoder must not be used afterwards.
func (d *ArrowIPCDecoder) Release() { d.out.rb.Release() }

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
	if len(b) > d.maxLen {
		return ReasonTooLarge, fmt.Errorf("decode message: %d bytes exceeds the limit of %d", len(b), d.maxLen)
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
	fallback := int64(0)
	if !m.Time.IsZero() {
		fallback = m.Time.UnixNano()
	}
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

// ipcTimeError is a value that is not a usable event time.
type ipcTimeError struct{ what string }

func (e *ipcTimeError) Error() string { return e.what }

var (
	errBadTime    = &ipcTimeError{"not a time within 1678..2262"}
	errBadUTF8    = errors.New("string is not valid UTF-8")
	errDictionary = errors.New("dictionary index out of range")
	errOffsets    = errors.New("string offsets out of range")
)

// valid reports whether row i of arr is a value: not null itself nor in a null struct.
func valid(arr arrow.Array, mask []bool, i int) bool {
	return (len(mask) == 0 || mask[i]) && arr.IsValid(i)
}

// convert appends the values of arr, converted for a slot of type t, to col; it returns
// an error naming the first bad value (col then has the rows before it).
func (d *ArrowIPCDecoder) convert(col *ipcCol, t slotType, arr arrow.Array, mask []bool) error {
	if arr.DataType().ID() == arrow.NULL { // has no validity bitmap, yet every value is null
		for range arr.Len() {
			col.appendNull(t)
		}
		return nil
	}
	if a, ok := arr.(*array.Dictionary); ok {
		dict := &d.dict
		dict.reset()
		if err := d.convert(dict, t, a.Dictionary(), nil); err != nil {
			return err
		}
		for i := range a.Len() {
			if !valid(arr, mask, i) {
				col.appendNull(t)
				continue
			}
			j := a.GetValueIndex(i)
			if j < 0 || j >= len(dict.valid) {
				return errDictionary
			}
			col.appendFrom(dict, t, j)
		}
		return nil
	}
	switch t {
	case slotNumber:
		return convertNumbers(col, arr, mask)
	case slotTime:
		return convertTimes(col, arr, mask)
	}
	return convertStrings(col, arr, mask)
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func appendNumbers[T integer | ~float64](col *ipcCol, vals []T, arr arrow.Array, mask []bool) {
	if arr.NullN() == 0 && len(mask) == 0 {
		col.appendValid(len(vals))
		if f, ok := any(vals).([]float64); ok {
			col.num = append(col.num, f...)
			return
		}
		col.num = slices.Grow(col.num, len(vals))
		for _, v := range vals {
			col.num = append(col.num, float64(v))
		}
		return
	}
	for i, v := range vals {
		if valid(arr, mask, i) {
			col.appendNum(float64(v))
		} else {
			col.appendNull(slotNumber)
		}
	}
}

func convertNumbers(col *ipcCol, arr arrow.Array, mask []bool) error {
	switch a := arr.(type) {
	case *array.Float64:
		appendNumbers(col, a.Float64Values(), arr, mask)
	case *array.Int64:
		appendNumbers(col, a.Int64Values(), arr, mask)
	case *array.Int32:
		appendNumbers(col, a.Int32Values(), arr, mask)
	case *array.Int16:
		appendNumbers(col, a.Int16Values(), arr, mask)
	case *array.Int8:
		appendNumbers(col, a.Int8Values(), arr, mask)
	case *array.Uint64:
		appendNumbers(col, a.Uint64Values(), arr, mask)
	case *array.Uint32:
		appendNumbers(col, a.Uint32Values(), arr, mask)
	case *array.Uint16:
		appendNumbers(col, a.Uint16Values(), arr, mask)
	case *array.Uint8:
		appendNumbers(col, a.Uint8Values(), arr, mask)
	default:
		for i := range arr.Len() {
			if !valid(arr, mask, i) {
				col.appendNull(slotNumber)
				continue
			}
			var v float64
			switch a := arr.(type) {
			case *array.Float32:
				v = float32Value(a.Value(i))
			case *array.Float16:
				v = float32Value(a.Value(i).Float32())
			case *array.Boolean:
				if a.Value(i) {
					v = 1
				}
			case *array.Decimal128:
				v, _ = strconv.ParseFloat(a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale), 64)
			case *array.Decimal256:
				v, _ = strconv.ParseFloat(a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale), 64)
			default:
				panic(fmt.Sprintf("BUG: number conversion of %s passed convertible", arr.DataType()))
			}
			col.appendNum(v)
		}
	}
	return nil
}

func convertStrings(col *ipcCol, arr arrow.Array, mask []bool) error {
	if a, ok := arr.(*array.String); ok {
		return appendStringArray(col, a, mask)
	}
	for i := range arr.Len() {
		if !valid(arr, mask, i) {
			col.appendNull(slotString)
			continue
		}
		var s string
		b := col.buf[:0]
		switch a := arr.(type) {
		case *array.String:
			s = a.Value(i)
		case *array.LargeString:
			s = a.Value(i)
		case *array.StringView:
			s = a.Value(i)
		case *array.Boolean:
			b = strconv.AppendBool(b, a.Value(i))
		case *array.Int64:
			b = strconv.AppendInt(b, a.Value(i), 10)
		case *array.Int32:
			b = strconv.AppendInt(b, int64(a.Value(i)), 10)
		case *array.Int16:
			b = strconv.AppendInt(b, int64(a.Value(i)), 10)
		case *array.Int8:
			b = strconv.AppendInt(b, int64(a.Value(i)), 10)
		case *array.Uint64:
			b = strconv.AppendUint(b, a.Value(i), 10)
		case *array.Uint32:
			b = strconv.AppendUint(b, uint64(a.Value(i)), 10)
		case *array.Uint16:
			b = strconv.AppendUint(b, uint64(a.Value(i)), 10)
		case *array.Uint8:
			b = strconv.AppendUint(b, uint64(a.Value(i)), 10)
		case *array.Float64:
			b = appendValueText(b, a.Value(i))
		case *array.Float32:
			b = appendValueText(b, float32Value(a.Value(i)))
		case *array.Float16:
			b = appendValueText(b, float32Value(a.Value(i).Float32()))
		case *array.Decimal128:
			b = appendNumberText(b, []byte(a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)))
		case *array.Decimal256:
			b = appendNumberText(b, []byte(a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale)))
		default:
			panic(fmt.Sprintf("BUG: string conversion of %s passed convertible", arr.DataType()))
		}
		if len(b) > 0 {
			col.buf = b // number text: valid UTF-8
			col.appendStr(b)
			continue
		}
		if !utf8.ValidString(s) {
			return errBadUTF8
		}
		col.valid = append(col.valid, true)
		col.data = append(col.data, s...)
		col.ends = append(col.ends, len(col.data))
	}
	return nil
}

// appendStringArray is convertStrings for the common String column. Without nulls, the
// UTF-8 check runs once over the column's bytes (each value is valid when the whole is
// and every value starts on a character boundary) and the values are copied in one
// piece.
func appendStringArray(col *ipcCol, a *array.String, mask []bool) error {
	n := a.Len()
	if n == 0 {
		return nil
	}
	offs := a.ValueOffsets()
	data := a.ValueBytes()
	if offs[0] < 0 || int(offs[n]) > len(data) {
		return errOffsets
	}
	for i, o := range offs[1 : n+1] {
		if o < offs[i] {
			return errOffsets
		}
	}
	if a.NullN() == 0 && len(mask) == 0 {
		lo, hi := int(offs[0]), int(offs[n])
		if !utf8.Valid(data[lo:hi]) {
			return errBadUTF8
		}
		for _, o := range offs[:n] {
			if int(o) < hi && !utf8.RuneStart(data[o]) {
				return errBadUTF8
			}
		}
		base := len(col.data) - lo
		col.data = append(col.data, data[lo:hi]...)
		col.appendValid(n)
		col.ends = slices.Grow(col.ends, n)
		for _, o := range offs[1 : n+1] {
			col.ends = append(col.ends, base+int(o))
		}
		return nil
	}
	for i := range n {
		if !valid(a, mask, i) {
			col.appendNull(slotString)
			continue
		}
		v := data[offs[i]:offs[i+1]]
		if !utf8.Valid(v) {
			return errBadUTF8
		}
		col.appendStr(v)
	}
	return nil
}

func convertTimes(col *ipcCol, arr arrow.Array, mask []bool) error {
	if a, ok := arr.(*array.Timestamp); ok {
		unit := unitNanoseconds(a.DataType().(*arrow.TimestampType).Unit)
		col.ns = slices.Grow(col.ns, a.Len())
		for i, v := range a.TimestampValues() {
			if !valid(arr, mask, i) {
				col.appendNull(slotTime)
				continue
			}
			ns, ok := mulNanos(int64(v), unit)
			if !ok {
				return errBadTime
			}
			col.appendTime(ns)
		}
		return nil
	}
	for i := range arr.Len() {
		if !valid(arr, mask, i) {
			col.appendNull(slotTime)
			continue
		}
		var ns int64
		ok := true
		switch a := arr.(type) {
		case *array.Timestamp:
			ns, ok = mulNanos(int64(a.Value(i)), unitNanoseconds(a.DataType().(*arrow.TimestampType).Unit))
		case *array.Date32:
			ns, ok = mulNanos(int64(a.Value(i)), 86400e9)
		case *array.Date64:
			ns, ok = mulNanos(int64(a.Value(i)), 1e6)
		case *array.Int64:
			ns, ok = unixNanosInt(a.Value(i))
		case *array.Int32:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Int16:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Int8:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Uint64:
			ns, ok = unixNanosUint(a.Value(i))
		case *array.Uint32:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Uint16:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Uint8:
			ns, ok = unixNanosInt(int64(a.Value(i)))
		case *array.Float64:
			ns, ok = unixNanosFloat(a.Value(i))
		case *array.Float32:
			ns, ok = unixNanosFloat(float32Value(a.Value(i)))
		case *array.Float16:
			ns, ok = unixNanosFloat(float32Value(a.Value(i).Float32()))
		case *array.String:
			ns, ok = parseTimeText(a.Value(i))
		case *array.LargeString:
			ns, ok = parseTimeText(a.Value(i))
		case *array.StringView:
			ns, ok = parseTimeText(a.Value(i))
		default:
			panic(fmt.Sprintf("BUG: time conversion of %s passed convertible", arr.DataType()))
		}
		if !ok {
			return errBadTime
		}
		col.appendTime(ns)
	}
	return nil
}

func unitNanoseconds(u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return 1e9
	case arrow.Millisecond:
		return 1e6
	case arrow.Microsecond:
		return 1e3
	}
	return 1
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

// checkIPCFraming walks the message framing of an IPC stream (continuation marker,
// metadata length, metadata, body), checks that every length stays within b, that
// nothing follows the end-of-stream marker and that each message's metadata is a sound
// flatbuffer (verifyIPCMetadata), before the IPC reader, which trusts all of that and
// allocates whatever the lengths say, sees the bytes. It returns the metadata of the
// first message, the schema.
func checkIPCFraming(b []byte) (schemaMeta []byte, err error) {
	n := 0
	for i := 0; i < len(b); {
		if len(b)-i < 4 {
			return nil, fmt.Errorf("truncated message prefix at byte %d", i)
		}
		metaLen := int64(int32(binary.LittleEndian.Uint32(b[i:])))
		i += 4
		if metaLen == -1 { // continuation marker 0xFFFFFFFF, then the length
			if len(b)-i < 4 {
				return nil, fmt.Errorf("truncated message length at byte %d", i)
			}
			metaLen = int64(int32(binary.LittleEndian.Uint32(b[i:])))
			i += 4
		}
		if metaLen == 0 { // end of stream
			if i != len(b) {
				return nil, fmt.Errorf("%d bytes after the end-of-stream marker", len(b)-i)
			}
			break
		}
		if metaLen < 0 || metaLen > int64(len(b)-i) {
			return nil, fmt.Errorf("metadata length %d at byte %d exceeds the message", metaLen, i-4)
		}
		meta := b[i : i+int(metaLen)]
		bodyLen, ok := verifyIPCMetadata(meta)
		if !ok {
			return nil, fmt.Errorf("corrupt message metadata at byte %d", i)
		}
		if n == 0 {
			schemaMeta = meta
		}
		i += int(metaLen)
		if bodyLen < 0 || bodyLen > int64(len(b)-i) {
			return nil, fmt.Errorf("body length %d at byte %d exceeds the message", bodyLen, i)
		}
		i += int(bodyLen)
		n++
	}
	if n == 0 {
		return nil, errors.New("no schema message")
	}
	return schemaMeta, nil
}

// Arrow's Go IPC reader follows the flatbuffers of the metadata without verifying them:
// a vector length becomes a make() and an offset that wraps around makes a cycle, both
// fatal (out of memory, stack overflow) rather than a recoverable panic. The C++ reader
// runs the flatbuffers verifier; verifyIPCMetadata is the subset of it that matters: it
// follows every table, vector and string the Go reader follows (Message.fbs and
// Schema.fbs), with the Go runtime's uint32 arithmetic, and checks that each lies within
// the metadata, that field nesting stays shallow and that no more tables are visited than
// the metadata has room for. Scalars are left to the reader: reading one out of range is
// a panic it recovers from.

// fbVerifier walks one flatbuffer.
type fbVerifier struct {
	b      []byte
	tables int // tables that may still be visited
}

// fbTable is a verified table: its position and its vtable's.
type fbTable struct {
	pos, vtable uint32
	vtableLen   uint16
}

const (
	maxFieldDepth = 64
	fbTypeUnion   = 14 // Type.Union in Schema.fbs
	fbTypeStamp   = 10 // Type.Timestamp
)

func (v *fbVerifier) u32(pos uint32) (uint32, bool) {
	if uint64(pos)+4 > uint64(len(v.b)) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v.b[pos:]), true
}

func (v *fbVerifier) table(pos uint32) (fbTable, bool) {
	if v.tables--; v.tables < 0 {
		return fbTable{}, false
	}
	so, ok := v.u32(pos)
	if !ok {
		return fbTable{}, false
	}
	vt := uint32(int32(pos) - int32(so))
	if uint64(vt)+2 > uint64(len(v.b)) {
		return fbTable{}, false
	}
	n := binary.LittleEndian.Uint16(v.b[vt:])
	if uint64(vt)+uint64(n) > uint64(len(v.b)) {
		return fbTable{}, false
	}
	return fbTable{pos: pos, vtable: vt, vtableLen: n}, true
}

// field returns the offset of field id within t, 0 when absent. Like the Go runtime, it
// takes the field as present when its vtable entry starts before the vtable's length,
// even if the entry ends after it; ok is false when the entry lies outside the buffer.
func (v *fbVerifier) field(t fbTable, id int) (off uint32, ok bool) {
	o := uint32(4 + 2*id)
	if o >= uint32(t.vtableLen) {
		return 0, true
	}
	if uint64(t.vtable)+uint64(o)+2 > uint64(len(v.b)) {
		return 0, false
	}
	return uint32(binary.LittleEndian.Uint16(v.b[t.vtable+o:])), true
}

// ref follows the offset stored in field id of t; present is false when the field is absent.
func (v *fbVerifier) ref(t fbTable, id int) (target uint32, present, ok bool) {
	o, ok := v.field(t, id)
	if o == 0 || !ok {
		return 0, false, ok
	}
	p := t.pos + o
	x, ok := v.u32(p)
	return p + x, true, ok
}

// sub verifies the table in field id of t, if any.
func (v *fbVerifier) sub(t fbTable, id int) (fbTable, bool, bool) {
	x, present, ok := v.ref(t, id)
	if !present || !ok {
		return fbTable{}, present, ok
	}
	st, ok := v.table(x)
	return st, true, ok
}

// vector checks the vector (or string) in field id of t and returns where its elements
// start and how many there are.
func (v *fbVerifier) vector(t fbTable, id int, elemSize uint64) (uint32, int, bool) {
	x, present, ok := v.ref(t, id)
	if !present || !ok {
		return 0, 0, ok
	}
	n, ok := v.u32(x)
	start := x + 4
	if !ok || uint64(start)+uint64(n)*elemSize > uint64(len(v.b)) {
		return 0, 0, false
	}
	return start, int(n), true
}

// tables verifies each table of the vector of tables in field id of t with check.
func (v *fbVerifier) tablesIn(t fbTable, id int, check func(fbTable) bool) bool {
	start, n, ok := v.vector(t, id, 4)
	for j := 0; ok && j < n; j++ {
		p := start + uint32(4*j)
		var x uint32
		x, ok = v.u32(p)
		var et fbTable
		if et, ok = v.table(p + x); ok {
			ok = check(et)
		}
	}
	return ok
}

func (v *fbVerifier) keyValues(t fbTable, id int) bool {
	return v.tablesIn(t, id, func(kv fbTable) bool {
		_, _, ok1 := v.vector(kv, 0, 1)
		_, _, ok2 := v.vector(kv, 1, 1)
		return ok1 && ok2
	})
}

func (v *fbVerifier) u8(t fbTable, id int) (byte, bool) {
	o, ok := v.field(t, id)
	if o == 0 || !ok {
		return 0, ok
	}
	if uint64(t.pos)+uint64(o) >= uint64(len(v.b)) {
		return 0, false
	}
	return v.b[t.pos+o], true
}

// verifyField checks a Field table and its children.
func (v *fbVerifier) verifyField(t fbTable, depth int) bool {
	if depth > maxFieldDepth {
		return false
	}
	if _, _, ok := v.vector(t, 0, 1); !ok { // name
		return false
	}
	typ, ok := v.u8(t, 2)
	if !ok {
		return false
	}
	tt, present, ok := v.sub(t, 3) // type
	if !ok {
		return false
	}
	if present {
		switch typ {
		case fbTypeUnion:
			_, _, ok = v.vector(tt, 1, 4) // typeIds
		case fbTypeStamp:
			_, _, ok = v.vector(tt, 1, 1) // timezone
		}
		if !ok {
			return false
		}
	}
	if dict, present, ok := v.sub(t, 4); !ok {
		return false
	} else if present {
		if _, _, ok := v.sub(dict, 1); !ok { // indexType
			return false
		}
	}
	return v.tablesIn(t, 5, func(c fbTable) bool { return v.verifyField(c, depth+1) }) && v.keyValues(t, 6)
}

func (v *fbVerifier) verifyRecordBatch(t fbTable) bool {
	_, _, ok1 := v.vector(t, 1, 16) // nodes: FieldNode structs
	_, _, ok2 := v.vector(t, 2, 16) // buffers: Buffer structs
	_, _, ok3 := v.sub(t, 3)        // compression
	_, _, ok4 := v.vector(t, 4, 8)  // variadicBufferCounts
	return ok1 && ok2 && ok3 && ok4
}

// verifyIPCMetadata verifies the Message flatbuffer of one IPC message and returns its
// bodyLength.
func verifyIPCMetadata(meta []byte) (int64, bool) {
	v := &fbVerifier{b: meta, tables: len(meta) / 4}
	root, ok := v.u32(0)
	if !ok {
		return 0, false
	}
	m, ok := v.table(root)
	if !ok || !v.keyValues(m, 4) {
		return 0, false
	}
	headerType, ok := v.u8(m, 1)
	if !ok {
		return 0, false
	}
	h, present, ok := v.sub(m, 2)
	if !ok {
		return 0, false
	}
	if present {
		switch headerType {
		case 1: // Schema
			ok = v.tablesIn(h, 1, func(f fbTable) bool { return v.verifyField(f, 0) }) && v.keyValues(h, 2)
			if ok {
				_, _, ok = v.vector(h, 3, 8) // features
			}
		case 2: // DictionaryBatch
			var data fbTable
			if data, present, ok = v.sub(h, 1); ok && present {
				ok = v.verifyRecordBatch(data)
			}
		case 3: // RecordBatch
			ok = v.verifyRecordBatch(h)
		}
		if !ok {
			return 0, false
		}
	}
	o, ok := v.field(m, 3) // bodyLength
	if o == 0 || !ok {
		return 0, ok
	}
	if uint64(m.pos)+uint64(o)+8 > uint64(len(meta)) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(meta[m.pos+o:])), true
}

// budgetAllocator is the memory the IPC reader allocates while reading one message: at
// most ipcMemoryBudget bytes in all (exceeding it panics, which the reader turns into an
// error), carved from chunks that are reused for the next message (reset) instead of
// being left to the garbage collector: the reader copies every buffer of every batch,
// which made fresh Go memory most of the cost of a batched message. Nothing the reader
// allocated is used after decodeMessage returns (the rows are converted into the
// decoder's scratch first), which is what makes the reuse safe.
type budgetAllocator struct {
	left   int
	chunks [][]byte // each 64-byte aligned
	cur    int      // chunk being carved
	off    int      // next free byte in chunks[cur]
}

var errIPCBudget = errors.New("message needs more than the memory budget")

const (
	arenaChunk = 1 << 20 // smallest chunk
	arenaKeep  = 32 << 20
)

// reset makes all chunks free again and restores the budget; chunks beyond arenaKeep
// bytes (left by an unusually large message) are dropped.
func (a *budgetAllocator) reset() {
	a.left, a.cur, a.off = ipcMemoryBudget, 0, 0
	kept := 0
	for i, c := range a.chunks {
		if kept += len(c); kept > arenaKeep {
			clear(a.chunks[i:])
			a.chunks = a.chunks[:i]
			break
		}
	}
}

func (a *budgetAllocator) take(n int) {
	if n < 0 || n > a.left {
		panic(errIPCBudget)
	}
	a.left -= n
}

// Allocate returns size zeroed bytes, 64-byte aligned, with no spare capacity (as
// memory.GoAllocator does).
func (a *budgetAllocator) Allocate(size int) []byte {
	a.take(size)
	n := (size + 63) &^ 63
	for ; a.cur < len(a.chunks); a.cur, a.off = a.cur+1, 0 {
		if c := a.chunks[a.cur]; a.off+n <= len(c) {
			b := c[a.off : a.off+size : a.off+size]
			a.off += n
			clear(b)
			return b
		}
	}
	c := alignedBytes(max(n, arenaChunk))
	a.chunks = append(a.chunks, c)
	a.cur, a.off = len(a.chunks)-1, n
	return c[:size:size]
}

// alignedBytes returns n zeroed bytes starting at a multiple of 64.
func alignedBytes(n int) []byte {
	b := make([]byte, n+64)
	shift := (64 - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&63)) & 63
	return b[shift : shift+n : shift+n]
}

func (a *budgetAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	return nb
}

// Free does nothing: the memory is reused after reset.
func (a *budgetAllocator) Free([]byte) {}

// ipcFrames serves the IPC messages of one stream held in memory to ipc.Reader,
// metadata and body as views of the stream's bytes: ipc's own message reader copies
// both into new buffers. The framing was checked by checkIPCFraming.
type ipcFrames struct {
	b   []byte
	i   int
	msg *ipc.Message
}

// Message returns the next message, valid until the next call, or io.EOF after the
// last one (or the end-of-stream marker).
func (r *ipcFrames) Message() (*ipc.Message, error) {
	r.Release()
	b := r.b
	if len(b)-r.i < 4 {
		return nil, io.EOF
	}
	metaLen := int64(int32(binary.LittleEndian.Uint32(b[r.i:])))
	r.i += 4
	if metaLen == -1 {
		if len(b)-r.i < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		metaLen = int64(int32(binary.LittleEndian.Uint32(b[r.i:])))
		r.i += 4
	}
	if metaLen == 0 {
		return nil, io.EOF
	}
	if metaLen < 0 || metaLen > int64(len(b)-r.i) {
		return nil, fmt.Errorf("metadata length %d exceeds the message", metaLen)
	}
	meta := b[r.i : r.i+int(metaLen)]
	r.i += int(metaLen)
	bodyLen, ok := verifyIPCMetadata(meta)
	if !ok || bodyLen < 0 || bodyLen > int64(len(b)-r.i) {
		return nil, errors.New("corrupt message metadata")
	}
	body := b[r.i : r.i+int(bodyLen)]
	r.i += int(bodyLen)
	r.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	return r.msg, nil
}

// Retain does nothing: the frames live as long as the decoder.
func (r *ipcFrames) Retain() {}

// Release releases the current message.
func (r *ipcFrames) Release() {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}
