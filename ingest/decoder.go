package ingest

import (
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// This file holds what the JSON, Avro and Arrow IPC decoders share: the slots a spec asks
// for, the per-row scratch, the output builders and the batch loop, so that the same
// events give the same records whatever their encoding.

// decoderBase is what every message decoder holds: its spec, the schema and builders of
// the records it returns, and the slots the spec asks for.
type decoderBase struct {
	spec   Spec
	schema *arrow.Schema
	maxLen int
	root   *pathNode // the slots' paths as a trie
	slots  []slot    // 0 = event time, 1 = model, 2 = model version, then fields
	out    *rowBuilder
}

// newDecoderBase returns the base of a decoder of spec, which must be valid, whose
// builders allocate from mem (memory.DefaultAllocator when nil).
func newDecoderBase(spec Spec, mem memory.Allocator) decoderBase {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	spec.Fields = append([]Field(nil), spec.Fields...)
	b := decoderBase{spec: spec, schema: spec.Schema(), maxLen: maxMessageBytes(spec)}
	b.root, b.slots = specSlots(spec)
	b.out = newRowBuilder(spec, b.schema, mem)
	return b
}

// Schema returns the schema of the records Decode returns.
func (d *decoderBase) Schema() *arrow.Schema { return d.schema }

// Release frees the decoder's builders. The decoder must not be used afterwards.
func (d *decoderBase) Release() { d.out.rb.Release() }

// checkSize returns the too_large error of a message of b bytes, nil when it fits.
func (d *decoderBase) checkSize(b []byte) error {
	if len(b) > d.maxLen {
		return fmt.Errorf("decode message: %d bytes exceeds the limit of %d", len(b), d.maxLen)
	}
	return nil
}

// rowDecoder is the base of the decoders that convert a message into one row (JSON,
// Avro): the row's converted values wait in vals and rowTime until the whole message is
// good, so a rejected message never leaves a partial row behind.
type rowDecoder struct {
	decoderBase
	vals    []rowValue // per slot; the event time's is scratch for its text
	rowTime int64
}

func newRowDecoder(spec Spec, mem memory.Allocator) rowDecoder {
	d := rowDecoder{decoderBase: newDecoderBase(spec, mem)}
	d.vals = make([]rowValue, len(d.slots))
	return d
}

// decode turns msgs into one record holding the good messages, in order, and reports
// every other message as Rejected (in order, with its index in msgs). row converts one
// message within the size limit into d.vals and d.rowTime. The record is never nil (it
// may have zero rows).
func (d *rowDecoder) decode(msgs []Message, row func(*Message) (Reason, error)) (arrow.Record, []Rejected) {
	var rejected []Rejected
	d.out.rb.Reserve(len(msgs))
	for i := range msgs {
		reason, err := ReasonTooLarge, d.checkSize(msgs[i].Value)
		if err == nil {
			reason, err = row(&msgs[i])
		}
		if err != nil {
			rejected = append(rejected, Rejected{Index: i, Reason: reason, Err: err})
			continue
		}
		d.out.appendRow(d.rowTime, d.vals)
	}
	return d.out.rb.NewRecord(), rejected
}

// cursor is a parser's position in a message's bytes and, once the parse has failed,
// why and where.
type cursor struct {
	b      []byte
	i      int
	errMsg string
	errPos int
}

// fail records msg at the current position and returns false, so that a parse step can
// end with return c.fail(…).
func (c *cursor) fail(msg string) bool {
	c.errMsg, c.errPos = msg, c.i
	return false
}

// kafkaTime is the event time of a message whose event carries none: its Kafka time in
// unix nanoseconds, 0 when that is zero too.
func (m *Message) kafkaTime() int64 {
	if m.Time.IsZero() {
		return 0
	}
	return m.Time.UnixNano()
}

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
