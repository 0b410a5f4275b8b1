package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// JSONDecoder decodes JSON events into Arrow records whose schema is Spec.Schema().
//
// It is schema-directed: one pass over each message extracts only the values the spec
// names and skips (but still validates) everything else, so the cost per message does not
// depend on how much else the producer logs. Values go into a per-row scratch first and
// reach the Arrow builders only when the whole row is good, so a rejected message never
// leaves a partial row behind.
//
// Conversion rules:
//   - Number fields: JSON numbers (parsed as float64; out of range → ±Inf), true/false →
//     1/0, the strings "NaN", "Infinity", "+Infinity", "-Infinity" (JSON cannot carry
//     those values otherwise); any other string, an object or an array is wrong_type.
//   - String fields (also model and model version): JSON strings (unescaped), true/false →
//     "true"/"false", integer literals verbatim ("3", "-12"), other numbers as their
//     shortest decimal text ("0.5", "3" for 3.0, exponent form outside 1e-6..1e21);
//     objects and arrays are wrong_type.
//   - null or absent → null. A parent that is not an object (e.g. "features": 3) makes
//     its children absent.
//   - Event time: an RFC 3339 string (fractional seconds optional), or the same with a
//     space instead of "T" and/or without a zone (UTC assumed), or a number (also as a
//     string) of unix time whose unit is guessed from its magnitude: |v| < 1e11 seconds,
//     < 1e14 milliseconds, < 1e17 microseconds, otherwise nanoseconds (1e11 s is the
//     year 5138 while 1e11 ms is 1973, so real timestamps are unambiguous). Fractions are
//     kept. Null or absent → Message.Time (unix 0 if that is zero too), or bad_time with
//     Spec.RequireEventTime. Anything else, or
//     a time outside 1678..2262 (int64 nanoseconds), is bad_time.
//
// A JSONDecoder reuses its builders and scratch buffers between calls and is therefore
// not safe for concurrent use; use one per goroutine. Call Release when done.
type JSONDecoder struct {
	rowDecoder
	caps    []capture // per slot, reset per message
	sc      scanner
	envSeen bool
}

// slot is one value the spec asks for.
type slot struct {
	path string
	typ  slotType
}

type slotType uint8

const (
	slotNumber slotType = iota
	slotString
	slotTime
)

const (
	slotEventTime = iota
	slotModel
	slotModelVersion
	slotFirstField
)

// pathNode is a trie of path segments; slots lists the slot indices whose path ends here.
type pathNode struct {
	children map[string]*pathNode
	slots    []int
	envelope bool

	// seen is the JSON scanner's guess of this object's keys: the key found at each
	// position of the last object it scanned here, and its child. Producers write their
	// keys in the same order in every message, so a key usually costs one comparison
	// instead of a map lookup. Every decoder builds its own trie, so this is per decoder.
	seen []seenKey
}

// seenKey is a key (raw bytes, no escapes) and its child node, nil when not wanted.
type seenKey struct {
	key   []byte
	child *pathNode
}

// maxSeenKeys bounds the positions remembered per object, so that a message with a huge
// object cannot grow the guess without limit; later keys are looked up in the map.
const maxSeenKeys = 256

// lookup returns the child for the key at position pos of an object at this node. key
// is the raw key and esc says whether it has escape sequences; buf is scratch for
// unescaping. It allocates only while learning keys longer than those seen before.
func (n *pathNode) lookup(pos int, key []byte, esc bool, buf *[]byte) *pathNode {
	if !esc && pos < len(n.seen) {
		if k := &n.seen[pos]; string(k.key) == string(key) {
			return k.child
		}
	}
	if esc {
		*buf = unescape((*buf)[:0], key)
		return n.children[string(*buf)]
	}
	child := n.children[string(key)]
	if pos < maxSeenKeys {
		for len(n.seen) <= pos {
			n.seen = append(n.seen, seenKey{})
		}
		k := &n.seen[pos]
		k.key = append(k.key[:0], key...)
		k.child = child
	}
	return child
}

func (n *pathNode) child(seg string) *pathNode {
	if n.children == nil {
		n.children = make(map[string]*pathNode)
	}
	c := n.children[seg]
	if c == nil {
		c = &pathNode{}
		n.children[seg] = c
	}
	return c
}

// kind is the JSON type of a captured value; kindAbsent is the zero value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindObject
	kindArray
)

func (k kind) String() string {
	return [...]string{"absent", "null", "boolean", "boolean", "number", "string", "object", "array"}[k]
}

// capture is the raw span of a value in the current message; for strings the span
// excludes the quotes and esc says whether it contains escape sequences. For numbers,
// num is the value when fast is true (see scanner.float), computed while scanning.
type capture struct {
	kind       kind
	esc        bool
	fast       bool
	start, end int
	num        float64
}

// rowValue is the converted value of one slot for the current row.
type rowValue struct {
	valid bool
	num   float64
	str   []byte // points into the message or into buf
	buf   []byte // reused storage for unescaped or formatted text
}

// NewJSONDecoder validates spec and returns a decoder that allocates Arrow memory from
// mem (memory.DefaultAllocator when nil).
func NewJSONDecoder(spec Spec, mem memory.Allocator) (*JSONDecoder, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create JSON decoder: %w", err)
	}
	d := &JSONDecoder{rowDecoder: newRowDecoder(spec, mem)}
	d.caps = make([]capture, len(d.slots))
	powersOfTen() // built once per process, here rather than in the first Decode
	return d, nil
}

// Decode turns msgs into one record holding the good messages, in order, and reports
// every other message as Rejected (in order, with its index in msgs). The record is
// never nil (it may have zero rows) and must be released by the caller.
func (d *JSONDecoder) Decode(msgs []Message) (arrow.Record, []Rejected) {
	return d.decode(msgs, d.decodeRow)
}

// decodeRow parses one message (within the size limit) into d.vals and d.rowTime
// without touching the builders.
func (d *JSONDecoder) decodeRow(m *Message) (Reason, error) {
	b := m.Value
	clear(d.caps)
	d.envSeen = false
	d.sc = scanner{cursor: cursor{b: b}, d: d, keyBuf: d.sc.keyBuf}
	if !d.sc.message(d.root) {
		return ReasonMalformed, fmt.Errorf("decode message: %s at byte %d", d.sc.errMsg, d.sc.errPos)
	}
	if d.spec.Envelope != "" && !d.envSeen {
		return ReasonMissingEnvelope, fmt.Errorf("decode message: envelope %q is not an object", d.spec.Envelope)
	}

	// Event time.
	c := d.caps[slotEventTime]
	switch c.kind {
	case kindAbsent, kindNull:
		if d.spec.RequireEventTime {
			return ReasonBadTime, fmt.Errorf("decode %q: event time is %s", d.spec.EventTime, c.kind)
		}
		d.rowTime = m.kafkaTime()
	case kindNumber:
		ns, ok := unixNanos(bytesString(b[c.start:c.end]))
		if !ok {
			return ReasonBadTime, fmt.Errorf("decode %q: number is not a unix time within 1678..2262", d.spec.EventTime)
		}
		d.rowTime = ns
	case kindString:
		v := &d.vals[slotEventTime]
		s := d.stringBytes(v, b, c)
		ns, ok := parseTimeText(bytesString(s))
		if !ok {
			return ReasonBadTime, fmt.Errorf("decode %q: string is not an RFC 3339 time or unix time within 1678..2262", d.spec.EventTime)
		}
		d.rowTime = ns
	default:
		return ReasonBadTime, fmt.Errorf("decode %q: event time is a %s", d.spec.EventTime, c.kind)
	}

	for i := slotModel; i < len(d.slots); i++ {
		if reason, err := d.convert(i, b); err != nil {
			return reason, err
		}
	}
	return "", nil
}

// convert turns the capture of slot i into d.vals[i].
func (d *JSONDecoder) convert(i int, b []byte) (Reason, error) {
	c := d.caps[i]
	v := &d.vals[i]
	v.valid = false
	if c.kind == kindAbsent || c.kind == kindNull {
		return "", nil
	}
	sl := &d.slots[i]
	raw := b[c.start:c.end]
	if sl.typ == slotNumber {
		switch c.kind {
		case kindNumber:
			f, ok := c.num, c.fast
			if !ok {
				var err error
				f, err = strconv.ParseFloat(bytesString(raw), 64)
				if err != nil && !errors.Is(err, strconv.ErrRange) {
					// Unreachable: the scanner only captures valid JSON numbers.
					return ReasonMalformed, fmt.Errorf("decode %q: %w", sl.path, err)
				}
			}
			v.num = f
		case kindTrue:
			v.num = 1
		case kindFalse:
			v.num = 0
		case kindString:
			f, ok := nonFiniteValue(d.stringBytes(v, b, c))
			if !ok {
				return ReasonWrongType, fmt.Errorf("decode %q: string in a number field", sl.path)
			}
			v.num = f
		default:
			return ReasonWrongType, fmt.Errorf("decode %q: %s in a number field", sl.path, c.kind)
		}
		v.valid = true
		return "", nil
	}
	switch c.kind {
	case kindString:
		s := d.stringBytes(v, b, c)
		if !utf8.Valid(s) {
			return ReasonMalformed, fmt.Errorf("decode %q: string is not valid UTF-8", sl.path)
		}
		v.str = s
	case kindTrue, kindFalse:
		v.str = strconv.AppendBool(v.buf[:0], c.kind == kindTrue)
	case kindNumber:
		v.buf = appendNumberText(v.buf[:0], raw)
		v.str = v.buf
	default:
		return ReasonWrongType, fmt.Errorf("decode %q: %s in a string field", sl.path, c.kind)
	}
	v.valid = true
	return "", nil
}

// stringBytes returns the content of a captured string, unescaping into v.buf if needed.
func (d *JSONDecoder) stringBytes(v *rowValue, b []byte, c capture) []byte {
	if !c.esc {
		return b[c.start:c.end]
	}
	v.buf = unescape(v.buf[:0], b[c.start:c.end])
	return v.buf
}

func appendString(sb *array.StringBuilder, v *rowValue) {
	if v.valid {
		sb.BinaryBuilder.Append(v.str)
	} else {
		sb.AppendNull()
	}
}

// bytesString views b as a string without copying; the string must not outlive b's
// current contents.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
