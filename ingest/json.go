package ingest

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// maxDepth bounds object/array nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

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
	spec   Spec
	schema *arrow.Schema
	maxLen int

	root    *pathNode
	slots   []slot    // 0 = event time, 1 = model, 2 = model version, then fields
	caps    []capture // per slot, reset per message
	vals    []rowValue
	sc      scanner
	envSeen bool

	out     *rowBuilder
	rowTime int64
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
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	spec.Fields = append([]Field(nil), spec.Fields...)
	d := &JSONDecoder{spec: spec, schema: spec.Schema()}
	d.maxLen = maxMessageBytes(spec)

	d.root, d.slots = specSlots(spec)
	d.caps = make([]capture, len(d.slots))
	d.vals = make([]rowValue, len(d.slots))

	d.out = newRowBuilder(spec, d.schema, mem)
	powersOfTen() // built once per process, here rather than in the first Decode
	return d, nil
}

// Schema returns the schema of the records Decode returns.
func (d *JSONDecoder) Schema() *arrow.Schema { return d.schema }

// Release frees the decoder's builders. The decoder must not be used afterwards.
func (d *JSONDecoder) Release() { d.out.rb.Release() }

// Decode turns msgs into one record holding the good messages, in order, and reports
// every other message as Rejected (in order, with its index in msgs). The record is
// never nil (it may have zero rows) and must be released by the caller.
func (d *JSONDecoder) Decode(msgs []Message) (arrow.Record, []Rejected) {
	var rejected []Rejected
	d.out.rb.Reserve(len(msgs))
	for i := range msgs {
		if reason, err := d.decodeRow(&msgs[i]); err != nil {
			rejected = append(rejected, Rejected{Index: i, Reason: reason, Err: err})
			continue
		}
		d.out.appendRow(d.rowTime, d.vals)
	}
	return d.out.rb.NewRecord(), rejected
}

// decodeRow parses one message into d.vals and d.rowTime without touching the builders.
func (d *JSONDecoder) decodeRow(m *Message) (Reason, error) {
	b := m.Value
	if len(b) > d.maxLen {
		return ReasonTooLarge, fmt.Errorf("decode message: %d bytes exceeds the limit of %d", len(b), d.maxLen)
	}
	clear(d.caps)
	d.envSeen = false
	d.sc = scanner{b: b, d: d, keyBuf: d.sc.keyBuf}
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
		d.rowTime = 0
		if !m.Time.IsZero() {
			d.rowTime = m.Time.UnixNano()
		}
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
			switch bytesString(d.stringBytes(v, b, c)) {
			case "NaN":
				v.num = math.NaN()
			case "Infinity", "+Infinity":
				v.num = math.Inf(1)
			case "-Infinity":
				v.num = math.Inf(-1)
			default:
				return ReasonWrongType, fmt.Errorf("decode %q: string in a number field", sl.path)
			}
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
	case kindTrue:
		v.str = append(v.buf[:0], "true"...)
	case kindFalse:
		v.str = append(v.buf[:0], "false"...)
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

// appendNumberText appends the text form of a valid JSON number literal: integer literals
// verbatim (so that large IDs stay exact; "-0" becomes "0"), anything else as the
// shortest decimal of its float64 value.
func appendNumberText(dst, lit []byte) []byte {
	integer := true
	for _, c := range lit {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if string(lit) == "-0" {
			return append(dst, '0')
		}
		return append(dst, lit...)
	}
	f, _ := strconv.ParseFloat(bytesString(lit), 64)
	return appendFloatText(dst, f)
}

// appendFloatText formats f as its shortest decimal text: plain notation for magnitudes in
// [1e-6, 1e21), exponent notation otherwise, and "0" for both zeros.
func appendFloatText(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat converts a valid JSON number literal whose value is an integer below 2^53
// times or divided by a power of ten up to 1e22, which covers what producers log
// (8–17 significant digits, small exponents); ok is false for anything else, and the
// caller then uses strconv.ParseFloat. The scanner computes the same while it
// validates a number it captures (scanner.number, scanner.float); this is that, for a
// literal on its own.
func fastFloat(b []byte) (f float64, ok bool) {
	sc := scanner{b: b}
	if !sc.number() || sc.i != len(b) {
		return 0, false
	}
	return sc.float()
}

// float returns the value of the number the scanner has just read (see fastFloat), by
// the two algorithms strconv.ParseFloat itself tries first, without its second pass over
// the digits: Clinger's fast path when the mantissa is below 2^53 and the power of ten
// within ±22 (both exact in float64, so one multiplication or division rounds
// correctly), else Eisel–Lemire for mantissas of up to 19 digits, which is what the
// shortest round-trip text of a float64 (most JSON encoders' output) needs. ok is false
// for more digits or when Eisel–Lemire cannot decide; strconv.ParseFloat then does.
func (s *scanner) float() (f float64, ok bool) {
	m, exp := s.mant, s.exp
	if s.digits > 19 {
		return 0, false
	}
	if m >= 1<<53 || exp < -22 || exp > 22 {
		return eiselLemire64(m, exp, s.neg)
	}
	f = float64(m)
	switch {
	case exp > 0:
		f *= pow10[exp]
	case exp < 0:
		f /= pow10[-exp]
	}
	if s.neg {
		f = -f
	}
	return f, true
}

// eiselLemire64 is strconv's eiselLemire64 (Go's source, BSD licence; the algorithm is
// Daniel Lemire's, https://nigeltao.github.io/blog/2020/eisel-lemire.html): the float64
// nearest to man × 10^exp10, or ok false when the 128-bit approximation cannot tell.
func eiselLemire64(man uint64, exp10 int, neg bool) (f float64, ok bool) {
	if man == 0 {
		if neg {
			f = math.Copysign(0, -1)
		}
		return f, true
	}
	if exp10 < powersOfTenMinExp10 || powersOfTenMaxExp10 < exp10 {
		return 0, false
	}
	pow := &powersOfTen()[exp10-powersOfTenMinExp10]

	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	const float64ExponentBias = 1023
	retExp2 := uint64(217706*exp10>>16+64+float64ExponentBias) - uint64(clz)

	xHi, xLo := bits.Mul64(man, pow[1])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[0])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}

	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb

	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false // half-way ambiguity
	}

	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal, infinite or NaN
	}
	retBits := retExp2<<52 | retMantissa&0x000FFFFFFFFFFFFF
	if neg {
		retBits |= 0x8000000000000000
	}
	return math.Float64frombits(retBits), true
}

// The powers of ten eiselLemire64 knows: 1e-348 … 1e347.
const (
	powersOfTenMinExp10 = -348
	powersOfTenMaxExp10 = +347
)

// powersOfTen returns, for each power of ten from 1e-348 to 1e347, the 128-bit
// approximation (rounded down, most significant bit set) of its mantissa as {low 64
// bits, high 64 bits}: strconv's detailedPowersOfTen, computed once on first use instead
// of copied as 700 lines of constants.
var powersOfTen = sync.OnceValue(func() *[powersOfTenMaxExp10 - powersOfTenMinExp10 + 1][2]uint64 {
	var t [powersOfTenMaxExp10 - powersOfTenMinExp10 + 1][2]uint64
	ten := big.NewInt(10)
	for q := powersOfTenMinExp10; q <= powersOfTenMaxExp10; q++ {
		p := new(big.Int).Exp(ten, big.NewInt(int64(max(q, -q))), nil)
		var m *big.Int
		if q >= 0 {
			if n := p.BitLen(); n > 128 {
				m = p.Rsh(p, uint(n-128))
			} else {
				m = p.Lsh(p, uint(128-n))
			}
		} else {
			// floor(2^k / 10^-q), k chosen so that the quotient has 128 bits; 10^-q is
			// not a power of two, so 2^(127+bitlen) / 10^-q lies strictly within
			// (2^127, 2^128).
			m = new(big.Int).Lsh(big.NewInt(1), uint(127+p.BitLen()))
			m.Quo(m, p)
		}
		lo := new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64))
		t[q-powersOfTenMinExp10] = [2]uint64{lo.Uint64(), new(big.Int).Rsh(m, 64).Uint64()}
	}
	return &t
})

// parseRFC3339Fast parses the form producers almost always write,
// "2006-01-02T15:04:05[.fraction]Z" or with a "±07:00" offset and a fraction of up to
// nine digits, within the years 1679..2260, by the same rules as time.Parse with
// time.RFC3339, without its general-purpose layout machinery. ok is false for anything
// else, which then goes through time.Parse.
func parseRFC3339Fast(s string) (ns int64, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				ok = false
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	ok = true
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if !ok || year < 1679 || year > 2260 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var nsec int64
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return 0, false
		}
		for i := 1; i < 10; i++ {
			nsec *= 10
			if i < n {
				nsec += int64(rest[i] - '0')
			}
		}
		rest = rest[n:]
	}
	var offset int
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zh, zm := 0, 0
		for _, c := range []byte(rest[1:3] + rest[4:6]) {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		zh = int(rest[1]-'0')*10 + int(rest[2]-'0')
		zm = int(rest[4]-'0')*10 + int(rest[5]-'0')
		if zh > 23 || zm > 59 {
			return 0, false
		}
		offset = (zh*60 + zm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return secs*1e9 + nsec, true
}

// daysIn returns the number of days of month (1..12) in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the given proleptic Gregorian date
// (year ≥ 1; Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

// parseTimeText parses an RFC 3339-like time ("2006-01-02", optionally followed by "T" or
// " ", the time of day, fractional seconds and a zone; no zone means UTC) or a unix time
// number given as text.
func parseTimeText(s string) (int64, bool) {
	if ns, ok := parseRFC3339Fast(s); ok {
		return ns, true
	}
	if len(s) >= 10 && s[4] == '-' {
		var layout string
		zone := len(s) > 10 && strings.ContainsAny(s[10:], "Zz+-")
		switch {
		case len(s) == 10:
			layout = "2006-01-02"
		case s[10] == 'T' && zone:
			layout = time.RFC3339 // also accepts fractional seconds
		case s[10] == 'T':
			layout = "2006-01-02T15:04:05"
		case s[10] == ' ' && zone:
			layout = "2006-01-02 15:04:05Z07:00"
		case s[10] == ' ':
			layout = "2006-01-02 15:04:05"
		default:
			return 0, false
		}
		t, err := time.Parse(layout, s)
		// int64 nanoseconds cover 1677-09-21 .. 2262-04-11.
		if y := t.Year(); err != nil || y < 1678 || y > 2261 {
			return 0, false
		}
		return t.UnixNano(), true
	}
	if !validNumber(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return 0, false
	}
	return unixNanos(s)
}

// validNumber reports whether b is exactly one JSON number literal.
func validNumber(b []byte) bool {
	sc := scanner{b: b}
	return len(b) > 0 && sc.number() && sc.i == len(b)
}

// unixNanos converts a valid JSON number literal of unix time to nanoseconds, guessing
// the unit from the magnitude (see JSONDecoder). It works on the decimal digits, so
// fractions such as 1764064800.25 s are exact; digits below a nanosecond are truncated.
func unixNanos(lit string) (int64, bool) {
	neg := strings.HasPrefix(lit, "-")
	if neg {
		lit = lit[1:]
	}
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		switch {
		case err != nil || e > 1000:
			return 0, false
		case e < -1000:
			return 0, true // rounds to the epoch
		}
		mant, exp = lit[:i], e
	}
	// Significant digits d and exponent exp such that |v| = d × 10^exp.
	var buf [40]byte
	n, dot := 0, false
	for i := 0; i < len(mant); i++ {
		c := mant[i]
		switch {
		case c == '.':
			dot = true
		case n == 0 && c == '0':
			if dot {
				exp--
			}
		case n < len(buf):
			buf[n] = c
			n++
			if dot {
				exp--
			}
		case !dot:
			exp++ // digits beyond 40 significant ones are far below a nanosecond
		}
	}
	if n == 0 {
		return 0, true
	}
	var unit int // decimal exponent of the unit: seconds 9, ms 6, µs 3, ns 0
	switch intDigits := n + exp; {
	case intDigits <= 11: // |v| < 1e11
		unit = 9
	case intDigits <= 14:
		unit = 6
	case intDigits <= 17:
		unit = 3
	}
	d, p := buf[:n], exp+unit
	if p < 0 {
		if -p >= n {
			return 0, true
		}
		d, p = d[:n+p], 0
	}
	if len(d)+p > 19 {
		return 0, false
	}
	v, err := strconv.ParseUint(bytesString(d), 10, 64)
	if err != nil {
		return 0, false
	}
	for ; p > 0; p-- {
		v *= 10 // cannot overflow: at most 19 digits
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	case neg && v <= 1<<63:
		return int64(-v), true
	}
	return 0, false
}

// unescape appends the unescaped form of a JSON string body (already validated by the
// scanner) to dst. Unpaired surrogates become U+FFFD, as in encoding/json.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(s) {
			return dst
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return dst
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		i += 2
	}
	return dst
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanner is a validating single-pass JSON walker that records the spans of the values
// whose paths are in the decoder's trie and skips everything else.
type scanner struct {
	b      []byte
	i      int
	d      *JSONDecoder // receives captures; nil when only validating
	keyBuf []byte       // reused for keys with escapes
	errMsg string
	errPos int

	// The last number read: sign, significant digits as an integer (meaningful while
	// digits ≤ 19), how many digits that took, and the power of ten to scale it by.
	neg    bool
	mant   uint64
	digits int
	exp    int
}

func (s *scanner) fail(msg string) bool {
	s.errMsg, s.errPos = msg, s.i
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		// Most messages are compact: test for "not whitespace" with one comparison first.
		if c := s.b[s.i]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		s.i++
	}
}

// message parses a whole message, which must be one JSON object.
func (s *scanner) message(root *pathNode) bool {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("empty message")
	}
	if s.b[s.i] != '{' {
		return s.fail("event is not a JSON object")
	}
	if !s.value(root, 0) {
		return false
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("trailing data after the object")
	}
	return true
}

// value parses one value; n is the trie node for its path, or nil when nothing below is
// wanted.
func (s *scanner) value(n *pathNode, depth int) bool {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input")
	}
	start := s.i
	var k kind
	esc := false
	switch c := s.b[s.i]; {
	case c == '{':
		if depth >= maxDepth {
			return s.fail("nesting too deep")
		}
		if n != nil && n.envelope {
			s.d.envSeen = true
		}
		if !s.object(n, depth+1) {
			return false
		}
		k = kindObject
	case c == '[':
		if depth >= maxDepth {
			return s.fail("nesting too deep")
		}
		if !s.array(depth + 1) {
			return false
		}
		k = kindArray
	case c == '"':
		s.i++
		var ok bool
		if esc, ok = s.str(); !ok {
			return false
		}
		k = kindString
		start++
		if n != nil && len(n.slots) > 0 {
			s.capture(n, capture{kind: k, esc: esc, start: start, end: s.i - 1})
		}
		return true
	case c == 't':
		if !s.literal("true") {
			return false
		}
		k = kindTrue
	case c == 'f':
		if !s.literal("false") {
			return false
		}
		k = kindFalse
	case c == 'n':
		if !s.literal("null") {
			return false
		}
		k = kindNull
	case c == '-' || (c >= '0' && c <= '9'):
		if !s.number() {
			return false
		}
		if n != nil && len(n.slots) > 0 {
			f, fast := s.float()
			s.capture(n, capture{kind: kindNumber, fast: fast, num: f, start: start, end: s.i})
		}
		return true
	default:
		return s.fail("unexpected character")
	}
	if n != nil && len(n.slots) > 0 {
		s.capture(n, capture{kind: k, start: start, end: s.i})
	}
	return true
}

func (s *scanner) capture(n *pathNode, c capture) {
	for _, i := range n.slots {
		s.d.caps[i] = c
	}
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return true
}

func (s *scanner) object(n *pathNode, depth int) bool {
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for pos := 0; ; pos++ {
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input")
		}
		if s.b[s.i] != '"' {
			return s.fail("expected an object key")
		}
		s.i++
		ks := s.i
		esc, ok := s.str()
		if !ok {
			return false
		}
		var child *pathNode
		if n != nil && len(n.children) > 0 {
			child = n.lookup(pos, s.b[ks:s.i-1], esc, &s.keyBuf)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("expected ':' after an object key")
		}
		s.i++
		if !s.value(child, depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return s.fail("expected ',' or '}' in an object")
		}
	}
}

func (s *scanner) array(depth int) bool {
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(nil, depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

// str scans a string body starting after the opening quote and leaves s.i after the
// closing quote. It reports whether the body contains escape sequences.
func (s *scanner) str() (esc, ok bool) {
	b := s.b
	for i := s.i; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = i
				return esc, s.fail("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					s.i = i
					return esc, s.fail("invalid \\u escape")
				}
				i += 6
			default:
				s.i = i
				return esc, s.fail("invalid escape")
			}
		case c < 0x20:
			s.i = i
			return esc, s.fail("control character in string")
		default:
			i++
		}
	}
	s.i = len(b)
	return esc, s.fail("unterminated string")
}

// number scans a strict JSON number and notes its digits for float.
func (s *scanner) number() bool {
	b, i := s.b, s.i
	s.neg = i < len(b) && b[i] == '-'
	if s.neg {
		i++
	}
	var m uint64
	digits := 0
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		d := i
		for i < len(b) && b[i]-'0' <= 9 {
			m = m*10 + uint64(b[i]-'0')
			i++
		}
		digits = i - d
	default:
		s.i = i
		return s.fail("invalid number")
	}
	exp := 0
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i]-'0' <= 9 {
			m = m*10 + uint64(b[i]-'0')
			i++
		}
		if i == d {
			s.i = i
			return s.fail("invalid number")
		}
		exp = d - i
		digits += i - d
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		d := i
		e := 0
		for i < len(b) && b[i]-'0' <= 9 {
			if e < 1e6 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == d {
			s.i = i
			return s.fail("invalid number")
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	s.i = i
	s.mant, s.digits, s.exp = m, digits, exp
	return true
}
