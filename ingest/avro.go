package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Rejection reasons of the Avro decoder, in addition to those of spec.go.
const (
	// ReasonUnknownSchema: the schema id of a Confluent wire-format message is not in the
	// registry, or names a schema that is not a usable Avro schema (another schema type,
	// references, a parse error).
	ReasonUnknownSchema Reason = "unknown_schema"
	// ReasonRegistryUnavailable: the schema registry could not be asked for the message's
	// schema (network error, timeout, 5xx). Messages with that schema id are rejected
	// until the next attempt, registryRetry later.
	ReasonRegistryUnavailable Reason = "registry_unavailable"
)

const (
	// registryTimeout bounds one schema fetch; Decode has no context of its own.
	registryTimeout = 10 * time.Second
	// registryRetry is how long a failed fetch is remembered before the registry is asked
	// again, so that an outage costs one timeout per interval rather than one per message.
	registryRetry = 5 * time.Second
	// unknownSchemaRetry is how long a schema id the registry does not know is remembered.
	unknownSchemaRetry = time.Minute
	// confluentHeader is the magic byte 0 and the 4-byte big-endian schema id.
	confluentHeader = 5
	// maxSchemaFailures bounds the schema ids remembered as failures.
	maxSchemaFailures = 1024
)

// SchemaRegistry is what the Avro decoder needs from a Confluent schema registry client;
// *sr.Client implements it.
type SchemaRegistry interface {
	// SchemaByID returns the schema registered under id; an *sr.ResponseError with status
	// 404 means there is none.
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
}

// AvroDecoder decodes Avro events in the Confluent wire format (magic byte 0, 4-byte
// big-endian schema id, Avro binary) into Arrow records whose schema is Spec.Schema().
//
// The writer schema of each id is fetched once from the registry and compiled into a
// program that walks the binary encoding, converts the values the spec names and skips
// everything else without building Go values, so a row costs no allocation. Paths are
// dotted as for JSON: they go through record fields by name and through map entries by
// key; a union is followed to the branch the message holds. Values are converted as the
// JSON decoder converts the JSON a producer would have written for them:
//   - Number fields: int, long, float, double, boolean (1/0), decimal (bytes or fixed,
//     via its exact decimal text); the strings "NaN", "Infinity", "+Infinity",
//     "-Infinity". A float is widened through its shortest decimal form (0.1f → 0.1).
//     Any other string, an enum, bytes, fixed, record, array or map is wrong_type.
//   - String fields (also model and model version): string (invalid UTF-8 is
//     malformed), enum (its symbol), boolean ("true"/"false"), int and long (decimal
//     digits), float and double (shortest decimal, "NaN", "Infinity", "-Infinity"),
//     decimal; bytes, fixed, record, array and map are wrong_type.
//   - null (a union's null branch) or a path the schema does not have → null.
//   - Event time: long timestamp-millis, timestamp-micros, timestamp-nanos and their
//     local-timestamp variants (taken as UTC), int date; other ints, longs, floats and
//     doubles with the JSON decoder's unit heuristic; strings as the JSON decoder parses
//     them; null → Message.Time (bad_time with Spec.RequireEventTime). Anything else, or
//     a time outside int64 nanoseconds, is bad_time.
//
// A message is rejected as a whole, for the first problem found in this order: its size
// (too_large); its header (malformed: shorter than 5 bytes, magic byte not 0); its schema
// (unknown_schema, registry_unavailable); its body (malformed: truncated, trailing bytes,
// invalid boolean, int, length, union or enum index, nesting deeper than 512); the
// envelope (missing_envelope); then the event time and the fields in spec order
// (bad_time, wrong_type, malformed for invalid UTF-8). Parts of arrays and maps that the
// spec does not reach into are skipped by their byte size when the encoder wrote it,
// and then not validated.
//
// An AvroDecoder reuses its builders, scratch buffers and schema cache between calls and
// is therefore not safe for concurrent use; use one per goroutine. Call Release when done.
type AvroDecoder struct {
	rowDecoder
	reg SchemaRegistry
	now func() time.Time

	programs map[int]*avroProgram
	failures int          // programs that are failures
	down     *avroProgram // the last registry_unavailable, while the registry is down

	r       avroReader
	fails   []avroFail // per slot, reset per message
	timeSet bool
	envSeen bool
	tmp     []byte // decimal text
}

// NewAvroDecoder validates spec and returns a decoder that looks schemas up in registry
// and allocates Arrow memory from mem (memory.DefaultAllocator when nil).
func NewAvroDecoder(spec Spec, registry SchemaRegistry, mem memory.Allocator) (*AvroDecoder, error) {
	err := spec.Validate()
	if registry == nil {
		err = errors.Join(err, errors.New("schema registry: none given"))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create Avro decoder: %w", err)
	}
	d := &AvroDecoder{
		rowDecoder: newRowDecoder(spec, mem),
		reg:        registry,
		now:        time.Now,
		programs:   make(map[int]*avroProgram),
	}
	d.fails = make([]avroFail, len(d.slots))
	return d, nil
}

// Decode turns msgs into one record holding the good messages, in order, and reports
// every other message as Rejected (in order, with its index in msgs). The record is
// never nil (it may have zero rows) and must be released by the caller. A schema id not
// seen before costs one registry request, made from within Decode.
func (d *AvroDecoder) Decode(msgs []Message) (arrow.Record, []Rejected) {
	return d.decode(msgs, d.decodeRow)
}

// decodeRow decodes one message (within the size limit) into d.vals and d.rowTime
// without touching the builders.
func (d *AvroDecoder) decodeRow(m *Message) (Reason, error) {
	b := m.Value
	if len(b) < confluentHeader {
		return ReasonMalformed, fmt.Errorf("decode message: %d bytes is shorter than the 5-byte Confluent header", len(b))
	}
	if b[0] != 0 {
		return ReasonMalformed, fmt.Errorf("decode message: magic byte is %d, not 0 (not Confluent wire format)", b[0])
	}
	prog := d.program(int(binary.BigEndian.Uint32(b[1:confluentHeader])))
	if prog.root == nil {
		return prog.reason, prog.err
	}

	for i := range d.vals {
		d.vals[i].valid = false
		d.fails[i] = avroFail{}
	}
	d.timeSet, d.envSeen = false, false
	d.r = avroReader{cursor{b: b, i: confluentHeader}}
	if !d.value(prog.root, 0) {
		return ReasonMalformed, fmt.Errorf("decode message: %s at byte %d", d.r.errMsg, d.r.errPos)
	}
	if d.r.i != len(b) {
		return ReasonMalformed, fmt.Errorf("decode message: %d trailing bytes after the record at byte %d", len(b)-d.r.i, d.r.i)
	}
	if d.spec.Envelope != "" && !d.envSeen {
		return ReasonMissingEnvelope, fmt.Errorf("decode message: envelope %q is not a record or map", d.spec.Envelope)
	}
	for i, f := range d.fails {
		if f.reason != "" {
			return f.reason, fmt.Errorf("decode %q: %s", d.slots[i].path, f.what)
		}
	}
	if !d.timeSet {
		if d.spec.RequireEventTime {
			return ReasonBadTime, fmt.Errorf("decode %q: event time is null or absent", d.spec.EventTime)
		}
		d.rowTime = m.kafkaTime()
	}
	return "", nil
}

// program returns the compiled schema of id, asking the registry if it is not cached or
// if a cached failure is due for a retry. While the registry is down, ids not cached are
// not asked for either, so that an outage costs one timeout per registryRetry, not one
// per schema id.
func (d *AvroDecoder) program(id int) *avroProgram {
	p := d.programs[id]
	if p != nil && (p.root != nil || d.now().Before(p.retryAt)) {
		return p
	}
	if d.down != nil && d.now().Before(d.down.retryAt) {
		return d.down
	}
	if d.failures >= maxSchemaFailures {
		// Garbage with a magic byte of 0 carries random ids: forget the failures
		// rather than grow without bound.
		for id, p := range d.programs {
			if p.root == nil {
				delete(d.programs, id)
			}
		}
		d.failures = 0
	}
	p = d.fetch(id)
	d.down = nil
	if p.reason == ReasonRegistryUnavailable {
		d.down = p
	}
	if p.root == nil {
		d.failures++
	}
	d.programs[id] = p
	return p
}

func (d *AvroDecoder) fetch(id int) *avroProgram {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	s, err := d.reg.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return &avroProgram{reason: ReasonUnknownSchema, retryAt: d.now().Add(unknownSchemaRetry),
				err: fmt.Errorf("decode message: schema id %d is not in the registry", id)}
		}
		return &avroProgram{reason: ReasonRegistryUnavailable, retryAt: d.now().Add(registryRetry),
			err: fmt.Errorf("decode message: cannot fetch schemas from the registry: %w", err)}
	}
	never := d.now().Add(math.MaxInt64)
	switch {
	case s.Type != sr.TypeAvro:
		return &avroProgram{reason: ReasonUnknownSchema, retryAt: never,
			err: fmt.Errorf("decode message: schema id %d is a %s schema, not Avro", id, s.Type)}
	case len(s.References) > 0:
		return &avroProgram{reason: ReasonUnknownSchema, retryAt: never,
			err: fmt.Errorf("decode message: schema id %d has references, which are not supported", id)}
	}
	parsed, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return &avroProgram{reason: ReasonUnknownSchema, retryAt: never,
			err: fmt.Errorf("decode message: cannot parse schema id %d: %w", id, err)}
	}
	c := avroCompiler{skip: make(map[avro.Schema]*avroNode)}
	return &avroProgram{root: c.node(parsed, d.root)}
}

// avroReader reads the Avro binary encoding from b[i:].
type avroReader struct{ cursor }

// long reads a zig-zag varint.
func (r *avroReader) long() (int64, bool) {
	var u uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if r.i >= len(r.b) {
			return 0, r.fail("unexpected end of input")
		}
		c := r.b[r.i]
		r.i++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), true
		}
	}
	return 0, r.fail("varint longer than 10 bytes")
}

// length reads a non-negative length and checks that that many bytes follow.
func (r *avroReader) length() (int, bool) {
	n, ok := r.long()
	if !ok {
		return 0, false
	}
	if n < 0 || n > int64(len(r.b)-r.i) {
		return 0, r.fail("length beyond the end of input")
	}
	return int(n), true
}

// index reads the index of an enum's symbol or a union's branch, of which there are n.
func (r *avroReader) index(n int, of string) (int, bool) {
	x, ok := r.long()
	if !ok {
		return 0, false
	}
	if x < 0 || x >= int64(n) {
		return 0, r.fail(of + " index out of range")
	}
	return int(x), true
}

func (r *avroReader) next(n int) ([]byte, bool) {
	if n > len(r.b)-r.i {
		return nil, r.fail("unexpected end of input")
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b, true
}

// avroFail is a conversion problem of one slot: the message is rejected with reason
// unless a later value for the same path replaces it.
type avroFail struct {
	reason Reason
	what   string
}

// avroValue is a decoded scalar handed to the slots that want it.
type avroValue struct {
	op  avroOp
	i   int64
	f   float64 // double, or float widened by float32Value
	b   []byte  // string, bytes, fixed, enum symbol
	sym bool    // b is an enum symbol
}

// value walks one value of node n, filling the slots of n and of nodes below it.
func (d *AvroDecoder) value(n *avroNode, depth int) bool {
	r := &d.r
	v := avroValue{op: n.op}
	switch n.op {
	case opNull:
	case opBoolean:
		b, ok := r.next(1)
		if !ok {
			return false
		}
		if b[0] > 1 {
			r.i--
			return r.fail("invalid boolean")
		}
		v.i = int64(b[0])
	case opInt, opLong:
		x, ok := r.long()
		if !ok {
			return false
		}
		if n.op == opInt && (x < math.MinInt32 || x > math.MaxInt32) {
			return r.fail("int out of range")
		}
		v.i = x
	case opFloat:
		b, ok := r.next(4)
		if !ok {
			return false
		}
		if len(n.slots) > 0 {
			v.f = float32Value(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		}
	case opDouble:
		b, ok := r.next(8)
		if !ok {
			return false
		}
		v.f = math.Float64frombits(binary.LittleEndian.Uint64(b))
	case opBytes, opString:
		l, ok := r.length()
		if !ok {
			return false
		}
		v.b, _ = r.next(l)
	case opFixed:
		var ok bool
		if v.b, ok = r.next(n.size); !ok {
			return false
		}
	case opEnum:
		x, ok := r.index(len(n.symbols), "enum")
		if !ok {
			return false
		}
		v.b, v.sym = n.symbols[x], true
	case opUnion:
		x, ok := r.index(len(n.branches), "union")
		if !ok {
			return false
		}
		return d.value(n.branches[x], depth)
	case opRecord:
		if depth >= maxDepth {
			return r.fail("nesting too deep")
		}
		if n.envelope {
			d.envSeen = true
		}
		for _, f := range n.fields {
			if !d.value(f, depth+1) {
				return false
			}
		}
	case opArray, opMap:
		if depth >= maxDepth {
			return r.fail("nesting too deep")
		}
		if n.envelope && n.op == opMap {
			d.envSeen = true
		}
		if !d.blocks(n, depth+1) {
			return false
		}
	}
	if len(n.slots) > 0 {
		for _, s := range n.slots {
			d.set(s, n, &v)
		}
	}
	return true
}

// blocks walks the blocks of an array or map.
func (d *AvroDecoder) blocks(n *avroNode, depth int) bool {
	r := &d.r
	for {
		count, ok := r.long()
		if !ok {
			return false
		}
		if count == 0 {
			return true
		}
		if count < 0 {
			if count = -count; count < 0 {
				return r.fail("invalid block count")
			}
			size, ok := r.length() // the block's byte size
			if !ok {
				return false
			}
			if n.keys == nil {
				r.i += size // nothing wanted inside: skip the whole block
				continue
			}
		}
		if n.op == opArray && n.items.zero {
			continue // items of no bytes: nothing to read, however many
		}
		// Every item reads at least one byte (a map key's length), so a hostile count
		// runs into the end of the input, not into a long loop.
		for ; count > 0; count-- {
			item := n.items
			if n.op == opMap {
				l, ok := r.length()
				if !ok {
					return false
				}
				key, _ := r.next(l)
				if k := n.keys[bytesString(key)]; k != nil {
					item = k
				}
			}
			if !d.value(item, depth) {
				return false
			}
		}
	}
}

// set converts v, the value of node n, into slot s.
func (d *AvroDecoder) set(s int, n *avroNode, v *avroValue) {
	d.fails[s] = avroFail{}
	val := &d.vals[s]
	val.valid = false
	typ := d.slots[s].typ
	if typ == slotTime {
		d.setTime(s, n, v)
		return
	}
	if v.op == opNull {
		return
	}
	if n.decimal && (v.op == opBytes || v.op == opFixed) {
		// As JSON would carry it: the exact decimal as a number literal.
		d.tmp = appendDecimalText(d.tmp[:0], v.b, n.scale)
		if typ == slotNumber {
			val.num, _ = strconv.ParseFloat(bytesString(d.tmp), 64) // ±Inf when out of range
		} else {
			val.buf = appendNumberText(val.buf[:0], d.tmp)
			val.str = val.buf
		}
		val.valid = true
		return
	}
	if typ == slotNumber {
		switch v.op {
		case opBoolean, opInt, opLong:
			val.num = float64(v.i)
		case opFloat, opDouble:
			val.num = v.f
		case opString:
			f, ok := nonFiniteValue(v.b)
			if !ok {
				d.fails[s] = avroFail{ReasonWrongType, "string in a number field"}
				return
			}
			val.num = f
		default:
			d.fails[s] = avroFail{ReasonWrongType, avroOpNames[v.op] + " in a number field"}
			return
		}
		val.valid = true
		return
	}
	switch v.op {
	case opString, opEnum:
		if !v.sym && !utf8.Valid(v.b) {
			d.fails[s] = avroFail{ReasonMalformed, "string is not valid UTF-8"}
			return
		}
		val.str = v.b
	case opBoolean:
		val.str = strconv.AppendBool(val.buf[:0], v.i == 1)
	case opInt, opLong:
		val.buf = strconv.AppendInt(val.buf[:0], v.i, 10)
		val.str = val.buf
	case opFloat, opDouble:
		val.buf = appendValueText(val.buf[:0], v.f)
		val.str = val.buf
	default:
		d.fails[s] = avroFail{ReasonWrongType, avroOpNames[v.op] + " in a string field"}
		return
	}
	val.valid = true
}

// setTime converts v into the event time.
func (d *AvroDecoder) setTime(s int, n *avroNode, v *avroValue) {
	d.timeSet = false
	var ns int64
	ok := true
	switch v.op {
	case opNull:
		return
	case opInt, opLong:
		switch n.unit {
		case unitGuess:
			ns, ok = unixNanosInt(v.i)
		case unitMillis:
			ns, ok = mulNanos(v.i, 1e6)
		case unitMicros:
			ns, ok = mulNanos(v.i, 1e3)
		case unitNanos:
			ns = v.i
		case unitDays:
			ns, ok = mulNanos(v.i, 86400e9)
		default:
			d.fails[s] = avroFail{ReasonBadTime, "a time of day is not an event time"}
			return
		}
	case opFloat, opDouble:
		ns, ok = unixNanosFloat(v.f)
	case opString:
		ns, ok = parseTimeText(bytesString(v.b))
	default:
		d.fails[s] = avroFail{ReasonBadTime, "event time is a " + avroOpNames[v.op]}
		return
	}
	if !ok {
		d.fails[s] = avroFail{ReasonBadTime, "not a time within 1678..2262"}
		return
	}
	d.rowTime, d.timeSet = ns, true
}

// appendDecimalText appends the exact decimal text of an Avro decimal: the big-endian
// two's-complement unscaled integer b divided by 10^scale.
func appendDecimalText(dst, b []byte, scale int) []byte {
	start := len(dst)
	switch {
	case len(b) == 0:
		dst = append(dst, '0')
	case len(b) <= 8:
		x := int64(int8(b[0])) // sign-extend
		for _, c := range b[1:] {
			x = x<<8 | int64(c)
		}
		dst = strconv.AppendInt(dst, x, 10)
	default:
		x := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		dst = x.Append(dst, 10)
	}
	if scale <= 0 {
		for ; scale < 0; scale++ {
			dst = append(dst, '0')
		}
		return dst
	}
	digits := start
	if dst[start] == '-' {
		digits++
	}
	// Left-pad with zeros so that there is at least one digit before the point.
	for len(dst)-digits <= scale {
		dst = append(dst, 0)
		copy(dst[digits+1:], dst[digits:])
		dst[digits] = '0'
	}
	dst = append(dst, 0)
	p := len(dst) - 1 - scale
	copy(dst[p+1:], dst[p:])
	dst[p] = '.'
	return dst
}
