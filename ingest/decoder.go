package ingest

import (
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// This file holds what the Avro and Arrow IPC decoders share with each other and with the
// JSON decoder's conventions: the slots a spec asks for, the per-row scratch, the output
// builders and the conversions that must agree across formats so that the same events
// give the same records whatever their encoding.

// specSlots returns the slots of spec (event time, model, model version, then one per
// field, as in JSONDecoder) and the trie of their paths, rooted at the envelope's parent:
// the envelope node, if any, is marked.
func specSlots(spec Spec) (*pathNode, []slot) {
	root := &pathNode{}
	event := root
	if spec.Envelope != "" {
		for _, seg := range strings.Split(spec.Envelope, ".") {
			event = event.child(seg)
		}
		event.envelope = true
	}
	slots := make([]slot, 0, slotFirstField+len(spec.Fields))
	add := func(path string, typ slotType) {
		i := len(slots)
		slots = append(slots, slot{path: path, typ: typ})
		if path == "" {
			return
		}
		n := event
		for _, seg := range strings.Split(path, ".") {
			n = n.child(seg)
		}
		n.slots = append(n.slots, i)
	}
	add(spec.EventTime, slotTime)
	add(spec.Model, slotString)
	add(spec.ModelVersion, slotString)
	for _, f := range spec.Fields {
		typ := slotNumber
		if f.Type == String {
			typ = slotString
		}
		add(f.Path, typ)
	}
	return root, slots
}

// maxMessageBytes resolves Spec.MaxMessageBytes.
func maxMessageBytes(spec Spec) int {
	switch {
	case spec.MaxMessageBytes == 0:
		return DefaultMaxMessageBytes
	case spec.MaxMessageBytes < 0:
		return math.MaxInt
	}
	return spec.MaxMessageBytes
}

// rowBuilder holds the Arrow builders of Spec.Schema(), typed once so that appending a
// row is a handful of direct calls.
type rowBuilder struct {
	rb     *array.RecordBuilder
	timeB  *array.Int64Builder
	modelB *array.StringBuilder
	versB  *array.StringBuilder
	numB   []*array.Float64Builder // per field; nil for string fields
	strB   []*array.StringBuilder  // per field; nil for number fields
}

func newRowBuilder(spec Spec, schema *arrow.Schema, mem memory.Allocator) *rowBuilder {
	b := &rowBuilder{rb: array.NewRecordBuilder(mem, schema)}
	b.timeB = b.rb.Field(0).(*array.Int64Builder)
	b.modelB = b.rb.Field(1).(*array.StringBuilder)
	b.versB = b.rb.Field(2).(*array.StringBuilder)
	b.numB = make([]*array.Float64Builder, len(spec.Fields))
	b.strB = make([]*array.StringBuilder, len(spec.Fields))
	for i, f := range spec.Fields {
		if f.Type == Number {
			b.numB[i] = b.rb.Field(3 + i).(*array.Float64Builder)
		} else {
			b.strB[i] = b.rb.Field(3 + i).(*array.StringBuilder)
		}
	}
	return b
}

// appendRow appends one row: the event time and the converted value of every slot
// (vals is indexed by slot; the event-time slot is ignored). The caller must have
// reserved room for the row (rb.Reserve, as Decode does for its batch): fixed-width
// values are appended without a capacity check each.
func (b *rowBuilder) appendRow(eventTime int64, vals []rowValue) {
	b.timeB.UnsafeAppend(eventTime)
	appendString(b.modelB, &vals[slotModel])
	appendString(b.versB, &vals[slotModelVersion])
	for i, nb := range b.numB {
		v := &vals[slotFirstField+i]
		switch {
		case nb == nil:
			appendString(b.strB[i], v)
		case v.valid:
			nb.UnsafeAppend(v.num)
		default:
			nb.UnsafeAppendBoolToBitmap(false)
		}
	}
}

// float32Value widens f to the float64 nearest to f's shortest decimal form, so that a
// float32 0.1 becomes 0.1, as it would if the producer had written it as JSON text,
// rather than 0.10000000149011612.
func float32Value(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return float64(f)
	}
	var buf [32]byte
	v, _ := strconv.ParseFloat(bytesString(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	return v
}

// appendValueText appends the text a String field holds for the number f: its shortest
// decimal, as the JSON decoder writes numbers, or "NaN", "Infinity", "-Infinity", the
// spellings a JSON Number field accepts for the values JSON numbers cannot carry.
func appendValueText(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return appendFloatText(dst, f)
}

// unixNanosInt converts an integer unix time to nanoseconds with the JSON decoder's unit
// heuristic (|v| < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, otherwise
// nanoseconds).
func unixNanosInt(v int64) (int64, bool) {
	a := v
	if a < 0 {
		if a == math.MinInt64 {
			return v, true
		}
		a = -a
	}
	switch {
	case a < 1e11:
		return mulNanos(v, 1e9)
	case a < 1e14:
		return mulNanos(v, 1e6)
	case a < 1e17:
		return mulNanos(v, 1e3)
	}
	return v, true
}

// unixNanosUint is unixNanosInt for unsigned values.
func unixNanosUint(v uint64) (int64, bool) {
	if v > math.MaxInt64 {
		return 0, false
	}
	return unixNanosInt(int64(v))
}

// unixNanosFloat converts a unix time number to nanoseconds exactly as the JSON decoder
// converts the shortest decimal text of f.
func unixNanosFloat(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	var buf [32]byte
	return unixNanos(bytesString(strconv.AppendFloat(buf[:0], f, 'g', -1, 64)))
}
