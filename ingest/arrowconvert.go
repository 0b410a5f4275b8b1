package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

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
		ns, ok, known := arrowTime(arr, i)
		if !known {
			panic(fmt.Sprintf("BUG: time conversion of %s passed convertible", arr.DataType()))
		}
		if !ok {
			return errBadTime
		}
		col.appendTime(ns)
	}
	return nil
}
