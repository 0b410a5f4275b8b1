package ingest

import (
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds object/array nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

// scanner is a validating single-pass JSON walker that records the spans of the values
// whose paths are in the decoder's trie and skips everything else.
type scanner struct {
	cursor
	d      *JSONDecoder // receives captures; nil when only validating
	keyBuf []byte       // reused for keys with escapes

	// The last number read: sign, significant digits as an integer (meaningful while
	// digits ≤ 19), how many digits that took, and the power of ten to scale it by.
	neg    bool
	mant   uint64
	digits int
	exp    int
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
		if more, ok := s.next('}', "expected ',' or '}' in an object"); !more {
			return ok
		}
	}
}

// next reads what follows a member of an object or an element of an array: a ',' (more
// follow) or the closing byte (ok, the end). Anything else fails with msg.
func (s *scanner) next(closing byte, msg string) (more, ok bool) {
	s.ws()
	switch {
	case s.i >= len(s.b):
		return false, s.fail("unexpected end of input")
	case s.b[s.i] == ',':
		s.i++
		return true, true
	case s.b[s.i] == closing:
		s.i++
		return false, true
	}
	return false, s.fail(msg)
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
		if more, ok := s.next(']', "expected ',' or ']' in an array"); !more {
			return ok
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

// validNumber reports whether b is exactly one JSON number literal.
func validNumber(b []byte) bool {
	sc := scanner{cursor: cursor{b: b}}
	return len(b) > 0 && sc.number() && sc.i == len(b)
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
