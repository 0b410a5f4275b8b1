package ingest

import (
	"math"
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
